"""The AWS query protocol, for the services whose model lists it (CloudWatch, IAM, STS): requests
are form-encoded ``Action=<Operation>&Version=<apiVersion>&Member.Sub=value`` (lists as
``Name.member.N``, maps as ``Name.entry.N.key``/``.value``, timestamps in ISO 8601), answers are
XML documents: ``<OpResponse><OpResult>...</OpResult><ResponseMetadata>`` and, for errors,
``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>``.

Older SDKs and tools speak it. Shapes come from the model; this module must not import service,
store or runtime code.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.model import ListShape, MapShape, Shape, StructureShape

from trainforge.aws import spec
from trainforge.aws.parser import MAX_DEPTH, Call, call_for
from trainforge.aws.protocols import HttpRequest, error_code, post_to_root
from trainforge.aws.skeleton import Response
from trainforge.errors import SerializationError, ServiceError, UnknownOperation

CONTENT_TYPE = "text/xml"
_Tree = dict[str, Any]
_INTEGER = re.compile(r"-?[0-9]{1,20}")
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", value))


@functools.cache
def _query_services() -> tuple[str, ...]:
    return tuple(
        name
        for name in spec.IMPLEMENTED
        if "query" in spec.service_model(name).metadata.get("protocols", [])
    )


def _tree(pairs: list[tuple[str, str]]) -> _Tree:
    """``a.b.1=x`` pairs as nested dicts ``{"a": {"b": {"1": "x"}}}``; a key that is both a value
    and a prefix keeps its value under ``""``."""
    root: _Tree = {}
    for key, value in pairs:
        parts = key.split(".")
        if len(parts) > MAX_DEPTH:
            raise SerializationError(f"The parameter {key[:100]} is nested too deeply.")
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {"": child} if child is not None else {}
                node[part] = child
            node = child
        last = parts[-1]
        if isinstance(node.get(last), dict):
            node[last][""] = value
        else:
            node[last] = value
    return root


def _items(node: Any) -> list[Any]:
    if not isinstance(node, dict):
        return []
    numbered = sorted((int(k), v) for k, v in node.items() if k.isdigit() and len(k) < 10)
    return [v for _, v in numbered]


def _scalar(node: Any) -> Any:
    return node.get("") if isinstance(node, dict) else node


def _read(shape: Shape, node: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(node, dict):
            return {} if node == "" else node
        result = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            if key in node:
                result[name] = _read(member, node[key])
        return result
    if kind == "list":
        assert isinstance(shape, ListShape)
        if node == "":
            return []
        name = shape.member.serialization.get("name", "member")
        items = node if shape.serialization.get("flattened") else _member(node, name)
        return [_read(shape.member, item) for item in _items(items)]
    if kind == "map":
        assert isinstance(shape, MapShape)
        entries = node if shape.serialization.get("flattened") else _member(node, "entry")
        return {
            str(_scalar(entry.get("key"))): _read(shape.value, entry.get("value"))
            for entry in _items(entries)
            if isinstance(entry, dict)
        }
    return _typed(shape, _scalar(node))


def _member(node: Any, name: str) -> Any:
    return node.get(name) if isinstance(node, dict) else None


def _typed(shape: Shape, text: Any) -> Any:
    """A form value as the shape's type; one that does not convert stays text, for the validator
    to name."""
    if not isinstance(text, str):
        return text
    kind = shape.type_name
    if kind in ("integer", "long"):
        return int(text) if _INTEGER.fullmatch(text) else text
    try:
        if kind in ("double", "float"):
            value = float(text)
            return value if math.isfinite(value) else text
    except ValueError:
        return text
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


def _xml(shape: Shape | None, value: Any) -> str:
    if shape is None or value is None:
        return ""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        members = shape.members
        return "".join(
            f"<{name}>{_xml(members[name], item)}</{name}>"
            for name, item in value.items()
            if name in members and item is not None
        )
    if kind == "list":
        assert isinstance(shape, ListShape)
        name = shape.member.serialization.get("name", "member")
        return "".join(f"<{name}>{_xml(shape.member, item)}</{name}>" for item in value)
    if kind == "map":
        assert isinstance(shape, MapShape)
        return "".join(
            f"<entry><key>{_text(str(key))}</key><value>{_xml(shape.value, item)}</value></entry>"
            for key, item in value.items()
        )
    if kind == "timestamp":
        seconds = value.timestamp() if isinstance(value, dt.datetime) else float(value)
        moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("double", "float"):
        return repr(float(value))
    return _text(str(value))


class Query:
    name = "query"

    def route(self, request: HttpRequest) -> None:
        post_to_root(request)

    @staticmethod
    def _pairs(request: HttpRequest) -> list[tuple[str, str]]:
        try:
            text = request.body.decode("utf-8")
            return parse_qsl(text, keep_blank_values=True, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise SerializationError("The request body is not a valid form.") from None

    @staticmethod
    def _service(action: str) -> str | None:
        for service in _query_services():
            if action in spec.service_model(service).operation_names:
                return service
        return None

    def service_of(self, request: HttpRequest) -> str | None:
        """The service whose operation the form's ``Action`` names, else the one whose API
        version its ``Version`` names: an error found before the request is parsed (a bad
        signature, an action trainforge does not serve) is answered in that service's words."""
        try:
            pairs = self._pairs(request)
        except ServiceError:
            return None
        fields = dict(reversed(pairs))
        service = self._service(fields.get("Action", ""))
        if service is not None:
            return service
        version = fields.get("Version")
        return next(
            (s for s in _query_services() if spec.service_model(s).api_version == version), None
        )

    def parse(self, request: HttpRequest) -> Call:
        self.route(request)
        pairs = self._pairs(request)
        action = next((v for k, v in pairs if k == "Action"), "")
        service = self._service(action)
        if service is None:
            raise UnknownOperation(f"The action {action[:100]} is not valid for this web service.")
        shape = spec.operation(service, action).input_shape
        fields = [(k, v) for k, v in pairs if k not in ("Action", "Version")]
        params = _read(shape, _tree(fields)) if shape is not None else {}
        return call_for(service, action, params)

    def success(self, call: Call, result: dict[str, Any], request_id: str) -> Response:
        operation = spec.operation(call.service, call.operation)
        shape = operation.output_shape
        namespace = operation.service_model.metadata.get("xmlNamespace", "")
        wrapper = (
            shape.serialization.get("resultWrapper", f"{call.operation}Result")
            if shape is not None
            else f"{call.operation}Result"
        )
        body = (
            f'<{call.operation}Response xmlns="{namespace}">'
            f"<{wrapper}>{_xml(shape, result)}</{wrapper}>"
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            f"</{call.operation}Response>"
        )
        return Response(200, self._headers(request_id), body.encode("utf-8"))

    def failure(self, error: ServiceError, request_id: str, service: str | None) -> Response:
        service = service or spec.CLOUDWATCH
        namespace = spec.service_model(service).metadata.get("xmlNamespace", "")
        fault = "Receiver" if error.status >= 500 else "Sender"
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault}</Type>'
            f"<Code>{_text(error_code(error, service))}</Code>"
            f"<Message>{_text(error.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return Response(error.status, self._headers(request_id), body.encode("utf-8"))

    @staticmethod
    def _headers(request_id: str) -> list[tuple[str, str]]:
        return [("content-type", CONTENT_TYPE), ("x-amzn-requestid", request_id)]


QUERY = Query()

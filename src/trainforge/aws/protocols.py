"""The wire protocols one trainforge endpoint speaks, and which one a request uses.

* AWS JSON (``POST /`` with ``X-Amz-Target``): 1.1 for SageMaker and CloudWatch Logs, 1.0 for
  CloudWatch, as each model's ``jsonVersion`` says.
* Smithy RPC v2 CBOR (``POST /service/<targetPrefix>/operation/<Operation>`` with
  ``smithy-protocol: rpc-v2-cbor``): what botocore sends CloudWatch since it prefers that
  protocol. Timestamps travel as CBOR tag 1, errors as ``{"__type", "message"}`` maps.
* The query protocol (form-encoded ``Action=...``, XML answers), in ``trainforge.aws.query``.

A service whose model is ``awsQueryCompatible`` (CloudWatch) names its errors by their query
codes: ``__type`` carries the modelled shape name and the ``x-amzn-query-error`` header the code
and fault (``InvalidParameterValue;Sender``), from which botocore takes the code it reports.

This module owns the choice of protocol and the framing of answers; the shapes come from
``spec``, the values from the handlers. It must not import service, store or runtime code.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from trainforge.aws import cbor, shapes, spec
from trainforge.aws.parser import Call, call_for, parse
from trainforge.aws.serializer import dumps, to_wire, walk
from trainforge.aws.skeleton import Encoder, Response
from trainforge.errors import SerializationError, ServiceError, UnknownOperation

# The codes a query-compatible service gives the errors every service shares.
_QUERY_CODES = {
    "ValidationException": "ValidationError",
    "InternalFailure": "InternalServiceError",
}
# A service that speaks only query (IAM, STS) names every common error in its own words.
_QUERY_ONLY_CODES = {
    "ValidationException": "ValidationError",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "UnknownOperationException": "InvalidAction",
    "SerializationException": "MalformedQueryString",
}


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes


class Wire(Encoder, Protocol):
    """A protocol: how a request is read, and (as an ``Encoder``) how it is answered."""

    name: str

    def route(self, request: HttpRequest) -> None:
        """Refuse, before its signature is checked, a request no operation of this protocol
        answers (wrong method or path)."""

    def parse(self, request: HttpRequest) -> Call: ...


def error_code(error: ServiceError, service: str | None) -> str:
    if service is not None and spec.query_only(service):
        return _QUERY_ONLY_CODES.get(error.code, error.code)
    if service is not None and spec.query_compatible(service):
        return _QUERY_CODES.get(error.code, error.code)
    return error.code


def _error_parts(error: ServiceError, service: str | None) -> tuple[str, list[tuple[str, str]]]:
    """``__type`` and the extra headers of an error answered for ``service``."""
    code = error_code(error, service)
    if service is None or not spec.query_compatible(service):
        return code, []
    fault = "Receiver" if error.status >= 500 else "Sender"
    shape = spec.error_shape_name(service, code) or code
    return shape, [("x-amzn-query-error", f"{code};{fault}")]


def post_to_root(request: HttpRequest) -> None:
    """The AWS JSON and query protocols take every operation as a POST to ``/``."""
    if request.method != "POST" or request.path != "/":
        raise UnknownOperation(
            f"{request.method} {request.path} is not an operation of this service."
        )


class AwsJson:
    """AWS JSON 1.1 / 1.0, routed by ``X-Amz-Target``."""

    name = "json"

    def route(self, request: HttpRequest) -> None:
        post_to_root(request)

    def parse(self, request: HttpRequest) -> Call:
        self.route(request)
        return parse(request.headers.get("x-amz-target"), request.body)

    @staticmethod
    def _content_type(service: str | None) -> str:
        version = spec.json_version(service) if service is not None else "1.1"
        return f"application/x-amz-json-{version}"

    def success(self, call: Call, result: dict[str, Any], request_id: str) -> Response:
        shape = shapes.output_shape(call.service, call.operation)
        headers = [
            ("content-type", self._content_type(call.service)),
            ("x-amzn-requestid", request_id),
        ]
        return Response(200, headers, dumps(to_wire(shape, result)))

    def failure(self, error: ServiceError, request_id: str, service: str | None) -> Response:
        kind, extra = _error_parts(error, service)
        headers = [
            ("content-type", self._content_type(service)),
            ("x-amzn-requestid", request_id),
            ("x-amzn-errortype", kind),
            *extra,
        ]
        return Response(error.status, headers, dumps({"__type": kind, "message": error.message}))


RPC_V2_PREFIX = "/service/"


@functools.cache
def _rpc_services() -> dict[str, str]:
    return spec.target_prefixes()


def _cbor_timestamp(value: Any) -> cbor.Epoch:
    seconds = value.timestamp() if isinstance(value, dt.datetime) else float(value)
    return cbor.Epoch(round(seconds, 3))


def _cbor_walk(shape: shapes.Shape | None, value: Any) -> Any:
    return walk(shape, value, _cbor_timestamp, float)


class RpcV2Cbor:
    """Smithy RPC v2 CBOR."""

    name = "rpc-v2-cbor"

    def _route(self, request: HttpRequest) -> tuple[str, str]:
        parts = request.path.split("/")
        # "", "service", <targetPrefix>, "operation", <Operation>
        if len(parts) != 5 or parts[3] != "operation" or request.method != "POST":
            raise UnknownOperation(
                f"{request.method} {request.path} is not an operation of this service."
            )
        service = _rpc_services().get(parts[2])
        if service is None or parts[4] not in spec.service_model(service).operation_names:
            raise UnknownOperation(f"Unknown operation {parts[2]}.{parts[4]}.")
        return service, parts[4]

    def route(self, request: HttpRequest) -> None:
        self._route(request)

    def service_of(self, request: HttpRequest) -> str | None:
        try:
            return self._route(request)[0]
        except ServiceError:
            return None

    def parse(self, request: HttpRequest) -> Call:
        service, operation = self._route(request)
        if request.headers.get("smithy-protocol") != "rpc-v2-cbor":
            raise SerializationError("The smithy-protocol header must be rpc-v2-cbor.")
        params = cbor.decode(request.body) if request.body else {}
        if not isinstance(params, dict):
            raise SerializationError("The request body must be a CBOR map.")
        return call_for(service, operation, params)

    @staticmethod
    def _headers(request_id: str) -> list[tuple[str, str]]:
        return [
            ("content-type", "application/cbor"),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("x-amzn-requestid", request_id),
        ]

    def success(self, call: Call, result: dict[str, Any], request_id: str) -> Response:
        shape = shapes.output_shape(call.service, call.operation)
        body = cbor.encode(_cbor_walk(shape, result) if shape is not None else {})
        return Response(200, self._headers(request_id), body)

    def failure(self, error: ServiceError, request_id: str, service: str | None) -> Response:
        kind, extra = _error_parts(error, service)
        body = cbor.encode({"__type": kind, "message": error.message})
        return Response(error.status, [*self._headers(request_id), *extra], body)


JSON = AwsJson()
RPC_V2_CBOR = RpcV2Cbor()


def select(request: HttpRequest) -> Wire:
    """The protocol ``request`` speaks."""
    if request.path.startswith(RPC_V2_PREFIX):
        return RPC_V2_CBOR
    content_type = request.headers.get("content-type", "")
    form = content_type.startswith("application/x-www-form-urlencoded")
    if form and "x-amz-target" not in request.headers:
        from trainforge.aws.query import QUERY  # imports this module

        return QUERY
    return JSON


def service_hint(request: HttpRequest) -> str | None:
    """The service a request is for, as far as its framing tells before it is parsed: errors
    found before parsing (a bad signature) are answered in that service's manner."""
    if request.path.startswith(RPC_V2_PREFIX):
        return RPC_V2_CBOR.service_of(request)
    protocol = select(request)
    if protocol is not JSON:
        from trainforge.aws.query import QUERY  # imports this module

        return QUERY.service_of(request)
    target = request.headers.get("x-amz-target") or ""
    prefix = target.partition(".")[0]
    return _rpc_services().get(prefix)

"""AWS JSON 1.1 and 1.0 requests → (service, operation, params).

``X-Amz-Target`` names the operation (``SageMaker.CreateTrainingJob``,
``Logs_20140328.GetLogEvents``, ``GraniteServiceVersion20100801.ListMetrics``); the body is the
input shape as JSON. Timestamps arrive as epoch numbers (boto3 sends integer seconds, other SDKs
fractions) or ISO 8601 strings; they leave here as float epoch seconds. A member sent as ``null``
is absent, as AWS treats it. Bodies nested deeper than any shape of the models, and the non-JSON
numbers ``NaN`` and ``Infinity``, are refused as serialization errors before anything walks them.
This module knows shapes only.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.utils import parse_timestamp

from trainforge.aws import spec
from trainforge.errors import SerializationError, UnknownOperation


@functools.cache
def _target_prefixes() -> dict[str, str]:
    return spec.target_prefixes()


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    params: dict[str, Any]


def parse_target(target: str | None) -> tuple[str, str]:
    if not target or "." not in target:
        raise UnknownOperation("Missing or malformed X-Amz-Target header.")
    prefix, _, operation = target.partition(".")
    service = _target_prefixes().get(prefix)
    if service is None or operation not in spec.service_model(service).operation_names:
        raise UnknownOperation(f"Unknown operation {target}.")
    return service, operation


# Deeper than any input shape of the served models (CreateTrainingJob's deepest is 7).
MAX_DEPTH = 32


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _too_deep(body: bytes) -> bool:
    """Bracket depth outside strings, counted before parsing: a body nested hundreds deep must
    not reach a recursive parser or walker."""
    depth = 0
    in_string = False
    escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    if body.count(b"[") + body.count(b"{") > MAX_DEPTH and _too_deep(body):
        raise SerializationError(f"The request body is nested more than {MAX_DEPTH} levels deep.")
    try:
        data = json.loads(body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SerializationError("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise SerializationError("The request body must be a JSON object.")
    if (b"\\ud" in body or b"\\uD" in body) and _has_lone_surrogate(data):
        raise SerializationError("The request body is not valid UTF-8 text.")
    return data


def _has_lone_surrogate(data: Any) -> bool:
    """JSON escapes can name half of a UTF-16 pair, which no text holds."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _timestamps(shape: Shape | None, value: Any) -> Any:
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        assert isinstance(shape, StructureShape)
        members = shape.members
        return {k: _timestamps(members.get(k), v) for k, v in value.items() if v is not None}
    if kind == "list" and isinstance(value, list):
        assert isinstance(shape, ListShape)
        return [_timestamps(shape.member, item) for item in value]
    if kind == "map" and isinstance(value, dict):
        assert isinstance(shape, MapShape)
        return {k: _timestamps(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return parse_timestamp(value).timestamp()
            except (ValueError, TypeError, OverflowError, RuntimeError):
                # botocore raises RuntimeError for an epoch string past its timezone tables.
                return value  # left for the validator to refuse
    return value


def parse(target: str | None, body: bytes) -> Call:
    service, operation = parse_target(target)
    return call_for(service, operation, parse_body(body))


def call_for(service: str, operation: str, params: dict[str, Any]) -> Call:
    """The call of already decoded ``params`` (from any protocol), timestamps as epoch seconds
    and ``null`` members dropped."""
    shape = spec.operation(service, operation).input_shape
    if shape is None:
        return Call(service, operation, {k: v for k, v in params.items() if v is not None})
    return Call(service, operation, _timestamps(shape, params))

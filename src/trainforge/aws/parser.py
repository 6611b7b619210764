"""AWS JSON 1.1 requests → (service, operation, params).

``X-Amz-Target`` names the operation (``SageMaker.CreateTrainingJob``,
``Logs_20140328.GetLogEvents``); the body is the input shape as JSON. Timestamps arrive as epoch
numbers (boto3 sends integer seconds, other SDKs fractions) or ISO 8601 strings; they leave here as
float epoch seconds. This module knows shapes only.
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
    return {spec.target_prefix(name): name for name in (spec.SAGEMAKER, spec.LOGS)}


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


def parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise SerializationError("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise SerializationError("The request body must be a JSON object.")
    return data


def _timestamps(shape: Shape | None, value: Any) -> Any:
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        assert isinstance(shape, StructureShape)
        members = shape.members
        return {k: _timestamps(members.get(k), v) for k, v in value.items()}
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
            except (ValueError, TypeError):
                return value  # left for the validator to refuse
    return value


def parse(target: str | None, body: bytes) -> Call:
    service, operation = parse_target(target)
    params = parse_body(body)
    shape = spec.operation(service, operation).input_shape
    return Call(service, operation, _timestamps(shape, params))

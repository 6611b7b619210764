"""Results and errors → AWS JSON 1.1 wire data, walked along the operation's output shape.

Members the shape does not know are dropped, absent members are omitted (never sent as null),
timestamps become epoch seconds with a millisecond fraction (``1747419050.603``). ``for_display``
renders the same data the way the AWS CLI prints it (ISO 8601 timestamps), for trainforge's own
commands.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StructureShape

from trainforge.errors import ServiceError


def _walk(shape: Shape | None, value: Any, timestamp: Any) -> Any:
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        members = shape.members
        return {
            name: _walk(members[name], item, timestamp)
            for name, item in value.items()
            if name in members and item is not None
        }
    if kind == "list":
        assert isinstance(shape, ListShape)
        return [_walk(shape.member, item, timestamp) for item in value]
    if kind == "map":
        assert isinstance(shape, MapShape)
        return {key: _walk(shape.value, item, timestamp) for key, item in value.items()}
    if kind == "timestamp":
        return timestamp(value)
    return value


def _epoch(value: Any) -> float | int:
    if isinstance(value, dt.datetime):
        value = value.timestamp()
    rounded = round(float(value), 3)
    return int(rounded) if rounded.is_integer() else rounded


def _iso(value: Any) -> str:
    moment = (
        value
        if isinstance(value, dt.datetime)
        else dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
    )
    return moment.isoformat()


def to_wire(shape: Shape | None, value: dict[str, Any]) -> dict[str, Any]:
    result = _walk(shape, value, _epoch)
    return result if isinstance(result, dict) else {}


def for_display(shape: Shape | None, value: dict[str, Any]) -> dict[str, Any]:
    result = _walk(shape, value, _iso)
    return result if isinstance(result, dict) else {}


def dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # Text that is no valid Unicode (half a surrogate pair) leaves escaped.
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def error_body(error: ServiceError) -> dict[str, str]:
    return {"__type": error.code, "message": error.message}

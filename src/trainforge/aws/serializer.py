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

from trainforge.aws.shapes import Shape
from trainforge.errors import ServiceError


def walk(shape: Shape | None, value: Any, timestamp: Any, number: Any = None) -> Any:
    """``value`` shaped by ``shape`` for a wire: absent members dropped, timestamps through
    ``timestamp``, doubles and floats through ``number`` when given."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        members = shape.members
        return {
            name: walk(members[name], item, timestamp, number)
            for name, item in value.items()
            if name in members and item is not None
        }
    if kind == "list":
        return [walk(shape.member, item, timestamp, number) for item in value]
    if kind == "map":
        return {key: walk(shape.value, item, timestamp, number) for key, item in value.items()}
    if kind == "timestamp":
        return timestamp(value)
    if number is not None and kind in ("double", "float"):
        return number(value)
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
    result = walk(shape, value, _epoch)
    return result if isinstance(result, dict) else {}


def for_display(shape: Shape | None, value: dict[str, Any]) -> dict[str, Any]:
    result = walk(shape, value, _iso)
    return result if isinstance(result, dict) else {}


def dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # Text that is no valid Unicode (half a surrogate pair) leaves escaped.
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def error_body(error: ServiceError) -> dict[str, str]:
    return {"__type": error.code, "message": error.message}

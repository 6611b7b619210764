"""Validate request parameters against an input shape of a service model (``shapes``; botocore's
own shapes read the same).

Checks what botocore's client-side validator leaves to the service: required members, types,
lengths, value ranges, enums and patterns (matched against the whole value, as AWS does), and
reports them in the AWS (Coral) format::

    2 validation errors detected: Value 'a_b' at 'trainingJobName' failed to satisfy
    constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62};
    Value null at 'roleArn' failed to satisfy constraint: Member must not be null

Member paths are lowerCamelCase, dotted; list items are ``name.<1-based index>.member``. Map
constraints are reported once per map as ``Map keys must satisfy constraint: [...]`` /
``Map value must satisfy constraint: [...]``. This module knows shapes only, never the service.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from trainforge.aws.shapes import Shape
from trainforge.errors import ValidationError

_INTEGER_TYPES = frozenset({"integer", "long", "short", "byte"})
_FLOAT_TYPES = frozenset({"float", "double", "bigdecimal"})
_TYPE_NAMES = {
    "string": "String",
    "integer": "Integer",
    "long": "Long",
    "float": "Float",
    "double": "Double",
    "boolean": "Boolean",
    "timestamp": "Timestamp",
    "blob": "Blob",
    "list": "List",
    "map": "Map",
    "structure": "Structure",
}


if TYPE_CHECKING:
    import regex

_SURROGATE_PAIR = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE)


def _java_to_python(pattern: str) -> str:
    """The models' patterns are Java regexes over UTF-16: a surrogate pair escape
    (``\\uD800\\uDC00``) names one supplementary code point, written ``\\U00010000`` here."""

    def code_point(match: re.Match[str]) -> str:
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}"

    return _SURROGATE_PAIR.sub(code_point, pattern)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | regex.Pattern[str]:
    """Python's own ``re`` where it reads the pattern the same (most of the models' patterns);
    the ``regex`` module, which also reads Java's classes such as ``\\p{...}``, for the rest
    (loaded only then: ``trainforge run`` validates a request before its container starts)."""
    converted = _java_to_python(pattern)
    # Where the two modules could read a pattern differently (a POSIX class, a nested set, a
    # set operation), or ``re`` cannot read it at all, ``regex`` decides.
    if not any(mark in converted for mark in ("\\p{", "\\P{", "[[", "[:", "&&", "--", "~~", "||")):
        try:
            return re.compile(converted)
        except re.error:
            pass
    import regex

    return regex.compile(converted)


def pattern_for_message(pattern: str) -> str:
    # AWS error texts show the model's pattern with a leading caret (observed for trainingJobName).
    return pattern if pattern.startswith("^") else "^" + pattern


def lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


# A value shown in a message is cut here: a request may carry megabytes in one member.
MAX_RENDERED = 1024


def render_value(value: Any, budget: int = MAX_RENDERED) -> str:
    """Render a value the way the Java service does inside ``Value '...'``, at most ``budget``
    characters (then ``...``)."""
    parts: list[str] = []
    used = 0

    def put(text: str) -> bool:
        nonlocal used
        parts.append(text)
        used += len(text)
        return used <= budget

    def walk(item: Any) -> bool:
        if item is None:
            return put("null")
        if isinstance(item, bool):
            return put("true" if item else "false")
        if isinstance(item, list):
            if not put("["):
                return False
            for index, element in enumerate(item):
                if (index and not put(", ")) or not walk(element):
                    return False
            return put("]")
        if isinstance(item, dict):
            if not put("{"):
                return False
            for index, (key, element) in enumerate(item.items()):
                if (index and not put(", ")) or not put(f"{key}=") or not walk(element):
                    return False
            return put("}")
        return put(str(item)[: budget + 1])

    if walk(value):
        return "".join(parts)
    return "".join(parts)[:budget] + "..."


def _error(value: Any, path: str, constraint: str) -> str:
    shown = "null" if value is None else f"'{render_value(value)}'"
    return f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}"


_INTEGER_BOUNDS = {
    "byte": 1 << 7,
    "short": 1 << 15,
    "integer": 1 << 31,
    "long": 1 << 63,
}


def _type_matches(shape: Shape, value: Any) -> bool:
    kind = shape.type_name
    if kind in ("string", "blob"):
        return isinstance(value, str)
    if kind in _INTEGER_TYPES:
        if isinstance(value, bool):
            return False
        if not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            return False
        # A number the service's type cannot hold is not of that type.
        bound = _INTEGER_BOUNDS[kind]
        return -bound <= value < bound
    if kind in _FLOAT_TYPES:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "timestamp":
        # The wire parser has already turned ISO 8601 strings into epoch seconds.
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind in ("map", "structure"):
        return isinstance(value, dict)
    return True


class Validator:
    """Walks a value along a shape and collects every constraint it breaks.

    ``also_accept`` maps a shape name to an extra pattern that values of that shape may match
    instead of the model's (trainforge accepts local paths where SageMaker takes an S3 URI);
    ``also_required`` adds required members to a structure shape (members the current model
    leaves optional only because of serverless jobs, which the service still requires).
    """

    def __init__(
        self,
        also_accept: Mapping[str, str] | None = None,
        also_required: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self._also_accept = dict(also_accept or {})
        self._also_required = dict(also_required or {})

    def errors(self, shape: Shape, params: Mapping[str, Any]) -> list[str]:
        found: list[str] = []
        self._structure(shape, params, "", found)
        return found

    def validate(self, shape: Shape, params: Mapping[str, Any]) -> None:
        found = self.errors(shape, params)
        if found:
            raise ValidationError(format_errors(found))

    def _structure(
        self, shape: Shape, value: Mapping[str, Any], path: str, found: list[str]
    ) -> None:
        required = set(shape.required_members) | self._also_required.get(shape.name, frozenset())
        for name, member in shape.members.items():
            member_path = f"{path}.{lower_first(name)}" if path else lower_first(name)
            item = value.get(name)
            if item is None:
                if name in required:
                    found.append(_error(None, member_path, "Member must not be null"))
                continue
            self._value(member, item, member_path, found)

    def _value(self, shape: Shape, value: Any, path: str, found: list[str]) -> None:
        if not _type_matches(shape, value):
            expected = _TYPE_NAMES.get(shape.type_name, shape.type_name)
            found.append(_error(value, path, f"Member must be of type {expected}"))
            return
        kind = shape.type_name
        if kind == "structure":
            self._structure(shape, value, path, found)
        elif kind == "list":
            too_long = self._length_failures(shape, len(value))
            found.extend(_error(value, path, c) for c in too_long)
            if too_long and len(value) > shape.metadata.get("max", len(value)):
                # The list is refused whole; its members are not worth walking.
                return
            for index, item in enumerate(value, start=1):
                item_path = f"{path}.{index}.member"
                if item is None:
                    found.append(_error(None, item_path, "Member must not be null"))
                    continue
                self._value(shape.member, item, item_path, found)
        elif kind == "map":
            self._map(shape, value, path, found)
        elif kind == "string":
            found.extend(_error(value, path, c) for c in self._string_failures(shape, value))
        elif kind in _INTEGER_TYPES or kind in _FLOAT_TYPES:
            found.extend(_error(value, path, c) for c in self._range_failures(shape, value))

    def _map(self, shape: Shape, value: dict[str, Any], path: str, found: list[str]) -> None:
        too_long = self._length_failures(shape, len(value))
        found.extend(_error(value, path, c) for c in too_long)
        if too_long and len(value) > shape.metadata.get("max", len(value)):
            return
        key_shape, value_shape = shape.key, shape.value
        if any(self._string_failures(key_shape, key) for key in value):
            rules = ", ".join(self._all_string_rules(key_shape))
            found.append(_error(value, path, f"Map keys must satisfy constraint: [{rules}]"))
        if value_shape.type_name == "string":
            bad = [
                v
                for v in value.values()
                if v is None or not isinstance(v, str) or self._string_failures(value_shape, v)
            ]
            if bad:
                rules = ", ".join([*self._all_string_rules(value_shape), "Member must not be null"])
                found.append(_error(value, path, f"Map value must satisfy constraint: [{rules}]"))
        else:
            for key, item in value.items():
                item_path = f"{path}.{key}"
                if item is None:
                    found.append(_error(None, item_path, "Member must not be null"))
                    continue
                self._value(value_shape, item, item_path, found)

    @staticmethod
    def _length_rules(shape: Shape) -> list[tuple[str, Callable[[int], bool]]]:
        meta = shape.metadata
        rules: list[tuple[str, Callable[[int], bool]]] = []
        if "max" in meta:
            top = meta["max"]
            rules.append(
                (f"Member must have length less than or equal to {top}", lambda n: n <= top)
            )
        if "min" in meta:
            low = meta["min"]
            rules.append(
                (f"Member must have length greater than or equal to {low}", lambda n: n >= low)
            )
        return rules

    def _length_failures(self, shape: Shape, length: int) -> list[str]:
        return [text for text, holds in self._length_rules(shape) if not holds(length)]

    def _string_rules(self, shape: Shape) -> list[tuple[str, Callable[[str], bool]]]:
        """Every rule a string of this shape must keep, in the order AWS lists them."""
        rules: list[tuple[str, Callable[[str], bool]]] = [
            (text, _on_length(holds)) for text, holds in self._length_rules(shape)
        ]
        pattern = shape.metadata.get("pattern")
        if pattern is not None:
            extra = self._also_accept.get(shape.name)

            def matches(value: str) -> bool:
                if _compiled(pattern).fullmatch(value):
                    return True
                return extra is not None and bool(_compiled(extra).fullmatch(value))

            text = "Member must satisfy regular expression pattern: " + pattern_for_message(pattern)
            rules.append((text, matches))
        enum = shape.metadata.get("enum")
        if enum:
            allowed = frozenset(enum)
            text = "Member must satisfy enum value set: [" + ", ".join(enum) + "]"
            rules.append((text, lambda v: v in allowed))
        return rules

    def _string_failures(self, shape: Shape, value: str) -> list[str]:
        return [text for text, holds in self._string_rules(shape) if not holds(value)]

    def _all_string_rules(self, shape: Shape) -> list[str]:
        return [text for text, _ in self._string_rules(shape)]

    @staticmethod
    def _range_failures(shape: Shape, value: float) -> list[str]:
        meta = shape.metadata
        failures = []
        if "max" in meta and value > meta["max"]:
            failures.append(f"Member must have value less than or equal to {meta['max']}")
        if "min" in meta and value < meta["min"]:
            failures.append(f"Member must have value greater than or equal to {meta['min']}")
        return failures


def _on_length(holds: Callable[[int], bool]) -> Callable[[str], bool]:
    return lambda value: holds(len(value))


def format_errors(errors: list[str]) -> str:
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(errors)

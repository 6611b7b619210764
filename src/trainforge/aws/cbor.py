"""CBOR (RFC 8949) as Smithy's rpc-v2-cbor protocol uses it: the data model of AWS requests and
responses, and nothing more.

``decode`` reads one data item: integers, byte and text strings (definite or chunked), arrays,
maps with text keys, ``true``/``false``/``null``/``undefined``, half, single and double floats, and
tag 1 (an epoch date-time), which comes back as an ``Epoch``. It refuses, as a
``SerializationError``, what no AWS client sends: other tags and simple values, non-text map keys,
items nested deeper than ``MAX_DEPTH``, lengths beyond the bytes that follow, invalid UTF-8 and
trailing bytes. ``encode`` writes the same data model in its shortest form, floats as doubles and
``Epoch`` as tag 1. This module knows bytes only, never shapes or services.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from trainforge.errors import SerializationError

# Deeper than any shape of the served models, as for JSON bodies (parser.MAX_DEPTH).
MAX_DEPTH = 32
_BREAK = 0xFF
_INDEFINITE = 31
_TAG_EPOCH = 1


class Epoch(float):
    """Seconds since the epoch, carried by tag 1."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise SerializationError("The CBOR request body ends in the middle of a data item.")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def peek(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None


def _argument(reader: _Reader, info: int) -> int:
    if info < 24:
        return info
    if info == 24:
        return reader.byte()
    if info in (25, 26, 27):
        return int.from_bytes(reader.take(1 << (info - 24)), "big")
    raise SerializationError(f"The CBOR request body has a malformed length (additional {info}).")


def _length(reader: _Reader, info: int) -> int:
    length = _argument(reader, info)
    # Every element takes at least one byte: a larger count cannot be honest.
    if length > len(reader.data) - reader.pos:
        raise SerializationError("The CBOR request body announces more items than it holds.")
    return length


def _string(reader: _Reader, major: int, info: int) -> bytes:
    if info != _INDEFINITE:
        return reader.take(_length(reader, info))
    chunks: list[bytes] = []
    while reader.peek() != _BREAK:
        initial = reader.byte()
        if initial >> 5 != major or initial & 0x1F == _INDEFINITE:
            raise SerializationError("A chunked CBOR string holds something other than chunks.")
        chunks.append(reader.take(_length(reader, initial & 0x1F)))
    reader.byte()
    return b"".join(chunks)


def _item(reader: _Reader, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise SerializationError(f"The request body is nested more than {MAX_DEPTH} levels deep.")
    initial = reader.byte()
    major, info = initial >> 5, initial & 0x1F
    if major == 0:
        return _argument(reader, info)
    if major == 1:
        return -1 - _argument(reader, info)
    if major == 2:
        return _string(reader, major, info)
    if major == 3:
        try:
            return _string(reader, major, info).decode("utf-8")
        except UnicodeDecodeError:
            raise SerializationError("The request body is not valid UTF-8 text.") from None
    if major == 4:
        if info == _INDEFINITE:
            items = []
            while reader.peek() != _BREAK:
                items.append(_item(reader, depth + 1))
            reader.byte()
            return items
        return [_item(reader, depth + 1) for _ in range(_length(reader, info))]
    if major == 5:
        return _map(reader, info, depth)
    if major == 6:
        tag = _argument(reader, info)
        value = _item(reader, depth + 1)
        if tag != _TAG_EPOCH:
            raise SerializationError(f"CBOR tag {tag} is not part of the rpc-v2-cbor protocol.")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise SerializationError("A CBOR date-time (tag 1) must hold a number.")
        return Epoch(value)
    return _simple(reader, info)


def _map(reader: _Reader, info: int, depth: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    count = None if info == _INDEFINITE else _length(reader, info)
    index = 0
    while (reader.peek() != _BREAK) if count is None else (index < count):
        key = _item(reader, depth + 1)
        if not isinstance(key, str):
            raise SerializationError("A CBOR map key in the request body is not a text string.")
        result[key] = _item(reader, depth + 1)
        index += 1
    if count is None:
        reader.byte()
    return result


def _simple(reader: _Reader, info: int) -> Any:
    if info == 20:
        return False
    if info == 21:
        return True
    if info in (22, 23):
        return None
    if info == 25:
        return struct.unpack(">e", reader.take(2))[0]
    if info == 26:
        return struct.unpack(">f", reader.take(4))[0]
    if info == 27:
        return struct.unpack(">d", reader.take(8))[0]
    raise SerializationError(f"CBOR simple value {info} is not part of the rpc-v2-cbor protocol.")


def decode(data: bytes) -> Any:
    reader = _Reader(data)
    value = _item(reader, 0)
    if reader.pos != len(data):
        raise SerializationError("The CBOR request body has bytes after its data item.")
    return value


def _head(out: bytearray, major: int, argument: int) -> None:
    if argument < 24:
        out.append(major << 5 | argument)
    elif argument < 1 << 8:
        out += bytes((major << 5 | 24, argument))
    elif argument < 1 << 16:
        out.append(major << 5 | 25)
        out += argument.to_bytes(2, "big")
    elif argument < 1 << 32:
        out.append(major << 5 | 26)
        out += argument.to_bytes(4, "big")
    elif argument < 1 << 64:
        out.append(major << 5 | 27)
        out += argument.to_bytes(8, "big")
    else:
        raise ValueError("CBOR integers without a tag end at 64 bits")


def _write(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(0xF6)
    elif isinstance(value, bool):
        out.append(0xF5 if value else 0xF4)
    elif isinstance(value, Epoch):
        _head(out, 6, _TAG_EPOCH)
        _write(out, float(value))
    elif isinstance(value, int):
        if value >= 0:
            _head(out, 0, value)
        else:
            _head(out, 1, -1 - value)
    elif isinstance(value, float):
        out.append(0xFB)
        out += struct.pack(">d", value)
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        _head(out, 3, len(raw))
        out += raw
    elif isinstance(value, bytes | bytearray):
        _head(out, 2, len(value))
        out += value
    elif isinstance(value, list | tuple):
        _head(out, 4, len(value))
        for item in value:
            _write(out, item)
    elif isinstance(value, dict):
        _head(out, 5, len(value))
        for key, item in value.items():
            _write(out, str(key))
            _write(out, item)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def encode(value: Any) -> bytes:
    out = bytearray()
    _write(out, value)
    return bytes(out)

"""RecordIO framing of Pipe-mode channels with ``RecordWrapperType: RecordIO`` (spec §7.4): each
object becomes one record, a little-endian uint32 magic ``0xCED7230A``, a uint32 length, the
payload and zero padding to a 4-byte boundary, as the SageMaker training toolkit writes and
reads it. Pure byte arithmetic; the feeder in ``runtime.pipes`` writes what this returns.
"""

from __future__ import annotations

import struct

from trainforge.errors import TrainforgeError

MAGIC = 0xCED7230A
# MXNet's readers keep the upper 3 bits of the length word for a continuation flag, so one
# whole record holds at most 2**29 - 1 bytes.
MAX_RECORD_BYTES = (1 << 29) - 1
_HEADER = struct.Struct("<II")


class RecordTooLarge(TrainforgeError, ValueError):
    """A payload longer than a RecordIO header can announce."""


def header(length: int) -> bytes:
    """The 8 bytes before a payload of ``length`` bytes."""
    if not 0 <= length <= MAX_RECORD_BYTES:
        raise RecordTooLarge(
            f"{length} bytes do not fit one RecordIO record (at most {MAX_RECORD_BYTES})"
        )
    return _HEADER.pack(MAGIC, length)


def padding(length: int) -> bytes:
    """The zeros after a payload of ``length`` bytes."""
    return b"\0" * (-length % 4)


def record(payload: bytes) -> bytes:
    return header(len(payload)) + payload + padding(len(payload))


def split_records(data: bytes) -> list[bytes]:
    """The payloads of a RecordIO stream (the reader's side, for tests and tools)."""
    payloads = []
    offset = 0
    while offset < len(data):
        magic, length = _HEADER.unpack_from(data, offset)
        if magic != MAGIC:
            raise ValueError(f"no RecordIO magic at offset {offset}")
        start = offset + _HEADER.size
        payloads.append(data[start : start + length])
        offset = start + length + (-length % 4)
    return payloads

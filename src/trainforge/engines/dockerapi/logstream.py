"""Docker's log streams and timestamps: the multiplexed frames of a container's (or a swarm
service's or task's) log, split into lines with the engine's own time of each, and Docker's RFC
3339 times as epoch values. Pure parsing: nothing here talks to the engine.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator

from trainforge.engines.base import LogLine


def parse_timestamp_ns(text: str) -> int:
    """Docker's RFC 3339 timestamps (``2026-11-26T12:30:54.123456789Z``) to epoch nanoseconds."""
    date, _, rest = text.partition("T")
    clock = rest.rstrip("Z")
    offset = 0
    for sign in ("+", "-"):
        if sign in clock:
            clock, _, zone = clock.partition(sign)
            hours, _, minutes = zone.partition(":")
            offset = (int(hours) * 3600 + int(minutes or 0) * 60) * (1 if sign == "+" else -1)
            break
    hms, _, fraction = clock.partition(".")
    year, month, day = (int(p) for p in date.split("-"))
    hour, minute, second = (int(p) for p in hms.split(":"))
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


def parse_time(text: str | None) -> float | None:
    """An RFC 3339 time as epoch seconds; None for Docker's zero time."""
    if not text or text.startswith("0001-"):
        return None
    try:
        return parse_timestamp_ns(text) / 1e9
    except ValueError:
        return None


def _frames(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Docker's multiplexed stream: an 8-byte header (stream, 0, 0, 0, big-endian size), then
    the payload."""
    buffer = b""
    for chunk in chunks:
        buffer = buffer + chunk if buffer else chunk
        position = 0
        end = len(buffer)
        while end - position >= 8:
            size = int.from_bytes(buffer[position + 4 : position + 8], "big")
            start = position + 8
            if end - start < size:
                break
            yield buffer[start : start + size]
            position = start + size
        buffer = buffer[position:]


class _Clock:
    """Docker's timestamps, parsed fast: lines of the same second share their date part."""

    def __init__(self) -> None:
        self._second: bytes = b""
        self._epoch = 0

    def ns(self, stamp: bytes) -> int | None:
        # 2026-11-26T12:30:54.123456789Z: the part up to the dot names the second.
        if len(stamp) < 20 or stamp[4:5] != b"-" or stamp[10:11] != b"T":
            return None
        dot = stamp.find(b".", 19)
        head = stamp[:dot] if dot > 0 else stamp[:19]
        if head != self._second or not stamp.endswith(b"Z"):
            try:
                if not stamp.endswith(b"Z"):
                    return parse_timestamp_ns(stamp.decode("ascii"))
                self._epoch = parse_timestamp_ns(head.decode("ascii") + "Z")
            except ValueError:
                return None
            self._second = head
        if dot < 0:
            return self._epoch
        fraction = stamp[dot + 1 : -1]
        return self._epoch + int(fraction.ljust(9, b"0")[:9] or b"0")


def _lines(frames: Iterator[bytes]) -> Iterator[LogLine]:
    """A long line arrives as several messages: they are joined, and only the first one's time
    counts."""
    clock = _Clock()
    pending = b""
    pending_ts = 0
    for frame in frames:
        head, sep, payload = frame.partition(b" ")
        ts = clock.ns(head) if sep else None
        if ts is None:
            payload = frame
        if pending:
            payload = pending + payload
            ts = pending_ts
        elif ts is None:
            ts = pending_ts
        if payload.endswith(b"\n") and payload.count(b"\n") == 1:
            yield LogLine(ts, payload[:-1].decode("utf-8", "replace"))
            pending = b""
            continue
        lines = payload.split(b"\n")
        pending = lines.pop()
        pending_ts = ts
        for line in lines:
            yield LogLine(ts, line.decode("utf-8", "replace"))
    if pending:
        yield LogLine(pending_ts, pending.decode("utf-8", "replace"))


def log_lines(chunks: Iterator[bytes]) -> Iterator[LogLine]:
    """The lines of a log stream read in chunks of any size."""
    return _lines(_frames(chunks))

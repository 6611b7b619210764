"""The small interface every store offers the runtime, and the facade that picks a store by
location. Stores raise ``StorageError`` with a message a user can act on, never a bare SDK error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from trainforge.storage.location import Location


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Stream(Protocol):
    """An object's bytes, read front to back (Pipe-mode channels read objects this way)."""

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end. Raises ``StorageError``."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Download:
    source: Location
    dest: Path
    size: int


ShouldStop = Callable[[], bool]


class Store(Protocol):
    def list(self, prefix: Location) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix.key``, in key order."""
        ...

    def read_bytes(self, location: Location, max_bytes: int) -> bytes: ...

    def open_stream(self, location: Location) -> Stream:
        """The object's bytes as a stream, fetched as they are read."""
        ...

    def download(self, items: Sequence[Download], should_stop: ShouldStop) -> int:
        """Fetch every item to its dest; returns the bytes written. Stops early, raising
        ``StorageCancelled``, once ``should_stop()`` is true."""
        ...

    def upload_file(self, path: Path, dest: Location) -> None: ...

    def delete(self, location: Location) -> None:
        """Remove one object; silent when it is already gone."""
        ...


class Storage:
    """Hands out the store for a location; the S3 store is built on first use, once, however
    many jobs ask for it at the same time (they share its connections)."""

    def __init__(self, s3_factory: Callable[[], Store], local: Store) -> None:
        self._s3_factory = s3_factory
        self._s3: Store | None = None
        self._local = local
        self._lock = threading.Lock()

    def store_for(self, location: Location) -> Store:
        if location.is_local:
            return self._local
        with self._lock:
            if self._s3 is None:
                self._s3 = self._s3_factory()
            return self._s3

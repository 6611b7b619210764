"""Local paths as a store: listing a directory, copying files in and out.

Local channels are normally mounted where they are, without a copy; this store serves the few
cases that do copy (manifest entries, output written to a local S3OutputPath). Every write goes
to a temporary name beside the target and is renamed into place, so a reader never sees half a
file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from trainforge.errors import StorageCancelled, StorageError
from trainforge.storage.base import Download, ObjectInfo, ShouldStop, Stream
from trainforge.storage.location import Location

_COPY_CHUNK = 1 << 20


class LocalStore:
    def list(self, prefix: Location) -> Iterator[ObjectInfo]:
        root = Path(prefix.path)
        if root.is_file():
            yield ObjectInfo(str(root), root.stat().st_size)
            return
        if not root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.is_file() and not path.is_symlink():
                    yield ObjectInfo(str(path), path.stat().st_size)

    def read_bytes(self, location: Location, max_bytes: int) -> bytes:
        try:
            with open(location.path, "rb") as fh:
                return fh.read(max_bytes)
        except OSError as exc:
            raise StorageError(f"cannot read {location.path}: {exc.strerror}") from exc

    def open_stream(self, location: Location) -> Stream:
        """A raw, unbuffered file: its ``fileno()`` lets a Pipe feeder splice it."""
        try:
            return open(location.path, "rb", buffering=0)
        except OSError as exc:
            raise StorageError(f"cannot read {location.path}: {exc.strerror}") from exc

    def download(self, items: Sequence[Download], should_stop: ShouldStop) -> int:
        total = 0
        for item in items:
            if should_stop():
                raise StorageCancelled()
            item.dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(item.source.path, item.dest)
            except OSError as exc:
                raise StorageError(f"cannot copy {item.source.path}: {exc.strerror}") from exc
            total += item.size
        return total

    def upload_file(self, path: Path, dest: Location) -> None:
        target = Path(dest.path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror}") from exc

    def delete(self, location: Location) -> None:
        try:
            Path(location.path).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot remove {location.path}: {exc.strerror}") from exc

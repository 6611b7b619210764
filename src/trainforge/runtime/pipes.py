"""Pipe-mode channels (spec §7.4): a named FIFO ``/opt/ml/input/data/<channel>_<epoch>`` per
epoch, fed while the host trains.

Staging lists a Pipe channel's objects once (the same listing and rules as File mode), keeps
the list as the channel's *plan* beside the job's trees and makes each host's ``<channel>_0``
before its container starts. A ``PipeFeeder`` (a ``runtime.attend`` component, so it runs where
the host runs: in the server's process on one machine, in the host's agent on a cluster) then
waits for the algorithm to open the epoch's FIFO, writes the host's objects into it (its shard,
in key order or in the epoch's shuffled order, each gunzipped or wrapped as a RecordIO record
as the channel asks), makes the next epoch's FIFO and closes, so the reader sees EOF with the
next FIFO already there. A reader that closes early ends that epoch (EPIPE). A blocked write
cannot outlive the reader, whose end closes when its container ends.

This module reads objects through the stores and writes them into FIFOs (made and opened by
``runtime.fifos``); it never lists, shards or downloads (``runtime.staging``,
``runtime.selection``).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import os
import tempfile
import threading
import zlib
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from trainforge.errors import StorageError, TrainforgeError
from trainforge.runtime import recordio
from trainforge.runtime.fifos import (
    current_epoch,
    data_directory,
    fifo_name,
    make_fifo,
    open_writer,
)
from trainforge.runtime.jobspec import ChannelSpec, JobSpec
from trainforge.runtime.selection import host_objects
from trainforge.runtime.workspace import HostWorkspace, Workspace, channel_hosts, channels_for_host
from trainforge.storage.base import Storage, Stream
from trainforge.storage.location import Location, Scheme

log = logging.getLogger("trainforge.runtime")

CHUNK_BYTES = 1 << 20
# A RecordIO record whose length is not known up front (a gzipped object, a manifest entry) is
# spooled first, in memory up to this size and on the job's scratch disk beyond it.
SPOOL_MEMORY_BYTES = 32 << 20
# Objects of S3 opened ahead of the one being written.
PREFETCH = 4


@dataclass(frozen=True)
class PipeObject:
    location: Location
    size: int | None  # None when the listing does not say (manifest entries)


# -- the plan ------------------------------------------------------------------


def plan_path(workspace: Workspace, channel: str) -> Path:
    return workspace.root / "pipes" / f"{channel}.json"


def write_plan(path: Path, objects: Sequence[PipeObject]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [[o.location.scheme.value, o.location.bucket, o.location.key, o.size] for o in objects]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows), encoding="utf-8")
    os.replace(tmp, path)


def read_plan(path: Path) -> list[PipeObject]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [
        PipeObject(Location(Scheme(scheme), bucket, key), None if size is None else int(size))
        for scheme, bucket, key, size in rows
    ]


# -- bytes -----------------------------------------------------------------------------------


class TruncatedGzip(TrainforgeError, ValueError):
    """A gzip object that ends in the middle of a member."""


def gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream (members one after another, as ``gunzip`` reads
    them), at most ``CHUNK_BYTES`` at a time however well the data compresses."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    in_member = False
    for chunk in chunks:
        data = chunk
        while data:
            in_member = True
            out = decoder.decompress(data, CHUNK_BYTES)
            if out:
                yield out
            if decoder.eof:
                data = decoder.unused_data
                decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                in_member = False
            else:
                data = decoder.unconsumed_tail
    if in_member:
        tail = decoder.flush()
        if tail:
            yield tail
        if not decoder.eof:
            raise TruncatedGzip("the gzip stream ends in the middle of a member")


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _chunks(stream: Stream) -> Iterator[bytes]:
    while chunk := stream.read(CHUNK_BYTES):
        yield chunk


def _splice(source: int, fd: int) -> int:
    """A local file into the FIFO without a copy through this process; the bytes moved."""
    moved = 0
    while count := os.splice(source, fd, CHUNK_BYTES):
        moved += count
    return moved


@dataclass
class PipeFeeder:
    """Feeds one Pipe channel of one host, epoch after epoch, until ``stopping``."""

    channel: ChannelSpec
    hw: HostWorkspace
    plan: Path
    scratch: Path
    storage: Storage
    host_index: int = 1
    host_count: int = 1
    sharded: bool = False

    @property
    def name(self) -> str:
        return f"pipe-{self.channel.name}"

    def epoch_objects(self, objects: Sequence[PipeObject], epoch: int) -> list[PipeObject]:
        return host_objects(
            objects,
            self.channel.shuffle_seed,
            self.host_index,
            self.host_count,
            self.sharded,
            epoch,
        )

    def run(self, stopping: threading.Event) -> list[str]:
        try:
            objects = read_plan(self.plan)
        except (OSError, ValueError, TypeError) as exc:
            return [f"{self.hw.host.name}: channel '{self.channel.name}' has no plan: {exc}"]
        warnings: list[str] = []
        try:
            with data_directory(self.hw) as directory:
                self._epochs(directory, objects, stopping, warnings)
        except OSError as exc:
            where = exc.filename or self.hw.data_dir
            warnings.append(
                f"{self.hw.host.name}: feeding channel '{self.channel.name}' stopped at {where}: "
                f"{exc.strerror or exc}"
            )
        return warnings

    def _epochs(
        self,
        directory: int,
        objects: Sequence[PipeObject],
        stopping: threading.Event,
        warnings: list[str],
    ) -> None:
        epoch = current_epoch(directory, self.channel.name)
        while True:
            name = fifo_name(self.channel.name, epoch)
            make_fifo(directory, name)
            fd = open_writer(directory, name, stopping)
            if fd is None:
                return
            try:
                with contextlib.closing(self._opened(self.epoch_objects(objects, epoch))) as opened:
                    for obj, stream in opened:
                        problem = self._write_object(fd, obj, stream)
                        if problem:
                            log.warning("%s: %s: %s", self.hw.host.name, name, problem)
                            warnings.append(f"{self.hw.host.name}: {name}: {problem}")
                # The next FIFO exists before the reader sees this one's end.
                make_fifo(directory, fifo_name(self.channel.name, epoch + 1))
            except BrokenPipeError:
                pass  # the reader closed early: the epoch ends here
            finally:
                os.close(fd)
            epoch += 1

    def _open(self, obj: PipeObject) -> Stream:
        return self.storage.store_for(obj.location).open_stream(obj.location)

    def _opened(
        self, objects: Sequence[PipeObject]
    ) -> Generator[tuple[PipeObject, Stream | StorageError], None, None]:
        """Each object with its stream (or why it cannot be read). Remote objects are opened
        ``PREFETCH`` ahead, so the next GETs' round trips overlap this object's writing: a
        channel of many small objects is otherwise all round trips."""
        if not objects or objects[0].location.is_local:
            for obj in objects:
                try:
                    yield obj, self._open(obj)
                except StorageError as exc:
                    yield obj, exc
            return
        rest = iter(objects)
        pending: deque[tuple[PipeObject, Future[Stream]]] = deque()
        with ThreadPoolExecutor(PREFETCH, thread_name_prefix="pipe-open") as pool:
            try:
                for obj in itertools.islice(rest, PREFETCH):
                    pending.append((obj, pool.submit(self._open, obj)))
                while pending:
                    obj, future = pending.popleft()
                    following = next(rest, None)
                    if following is not None:
                        pending.append((following, pool.submit(self._open, following)))
                    try:
                        stream = future.result()
                    except StorageError as exc:
                        yield obj, exc
                        continue
                    yield obj, stream
            finally:
                # The epoch ended early: what was opened ahead is closed unread.
                for _, future in pending:
                    if not future.cancel() and future.exception() is None:
                        future.result().close()

    def _write_object(self, fd: int, obj: PipeObject, stream: Stream | StorageError) -> str | None:
        """Write one object (gunzipped, framed as the channel asks); what went wrong with it, if
        anything. ``BrokenPipeError`` when the reader has gone."""
        if isinstance(stream, StorageError):
            return f"skipped {obj.location}: {stream}"
        try:
            gzipped = self.channel.compression == "Gzip"
            if self.channel.record_wrapper == "RecordIO":
                self._write_record(fd, obj, stream, gzipped)
                return None
            if not gzipped and isinstance(stream, io.FileIO):
                _splice(stream.fileno(), fd)
                return None
            for chunk in gunzip(_chunks(stream)) if gzipped else _chunks(stream):
                write_all(fd, chunk)
            return None
        except (StorageError, zlib.error, TruncatedGzip) as exc:
            return f"{obj.location} was cut short: {exc}"
        except recordio.RecordTooLarge as exc:
            return f"skipped {obj.location}: {exc}"
        finally:
            stream.close()

    def _write_record(self, fd: int, obj: PipeObject, stream: Stream, gzipped: bool) -> None:
        if not gzipped and obj.size is not None:
            write_all(fd, recordio.header(obj.size))
            sent = 0
            for chunk in _chunks(stream):
                part = chunk[: obj.size - sent]
                write_all(fd, part)
                sent += len(part)
            if sent < obj.size:  # the object shrank since the listing: keep the framing whole
                write_all(fd, bytes(obj.size - sent))
            write_all(fd, recordio.padding(obj.size))
            return
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.SpooledTemporaryFile(
            SPOOL_MEMORY_BYTES, "w+b", dir=str(self.scratch)
        ) as spool:
            for chunk in gunzip(_chunks(stream)) if gzipped else _chunks(stream):
                spool.write(chunk)
            length = spool.tell()
            head = recordio.header(length)
            spool.seek(0)
            write_all(fd, head)
            while chunk := spool.read(CHUNK_BYTES):
                write_all(fd, chunk)
            write_all(fd, recordio.padding(length))


def host_pipes(
    spec: JobSpec, workspace: Workspace, hw: HostWorkspace, storage: Storage
) -> list[PipeFeeder]:
    """A feeder for each Pipe channel ``hw``'s host reads."""
    feeders = []
    for channel in channels_for_host(spec, hw.host):
        if channel.input_mode != "Pipe":
            continue
        hosts = channel_hosts(spec, channel)
        feeders.append(
            PipeFeeder(
                channel,
                hw,
                plan_path(workspace, channel.name),
                workspace.scratch_dir / "pipes" / hw.host.name,
                storage,
                host_index=[h.name for h in hosts].index(hw.host.name) + 1,
                host_count=len(hosts),
                sharded=channel.distribution == "ShardedByS3Key" and len(hosts) > 1,
            )
        )
    return feeders

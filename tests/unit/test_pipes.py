"""Pipe mode's pure parts and its feeder on real FIFOs (spec §7.4-§7.6): RecordIO framing
checked against the SageMaker SDK's own reader and writer, gzip members, the per-epoch order,
shards that agree with File-mode staging, and a feeder fed through local files (no container:
the end-to-end tests are in tests/integration/test_pipe_mode.py)."""

from __future__ import annotations

import ast
import gzip
import importlib.util
import io
import os
import random
import select
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trainforge.runtime import recordio
from trainforge.runtime.fifos import fifo_path
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.pipes import (
    CHUNK_BYTES,
    PipeFeeder,
    TruncatedGzip,
    gunzip,
    host_pipes,
    plan_path,
    read_plan,
)
from trainforge.runtime.selection import host_objects, ordered, shard
from trainforge.runtime.staging import Stager
from trainforge.runtime.workspace import Workspace, input_data_config
from trainforge.storage.base import Storage
from trainforge.storage.local import LocalStore

ARN = "arn:aws:sagemaker:us-east-1:000000000000:training-job/job"


# -- RecordIO ----------------------------------------------------------------------------------


def _sdk_recordio() -> tuple[Callable[[Any, bytes], None], Callable[[Any], Iterator[bytes]]]:
    """The SageMaker SDK's own RecordIO writer and reader (sagemaker/serializer_utils.py), run
    from its source: importing the package costs seconds and numpy, these two need neither."""
    origin = importlib.util.find_spec("sagemaker")
    assert origin is not None and origin.origin is not None
    source = Path(origin.origin).with_name("serializer_utils.py").read_text()
    wanted = {"_write_recordio", "read_recordio", "_kmagic", "padding"}
    body = []
    for node in ast.parse(source).body:
        names = {getattr(node, "name", None)} | {
            getattr(t, "id", None) for t in getattr(node, "targets", [])
        }
        if names & wanted or isinstance(node, ast.For):  # the loop fills ``padding``
            body.append(node)
    namespace: dict[str, Any] = {"struct": struct, "sys": __import__("sys")}
    exec(compile(ast.Module(body, []), "serializer_utils.py", "exec"), namespace)
    return namespace["_write_recordio"], namespace["read_recordio"]


_write_recordio, read_recordio = _sdk_recordio()


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 8, 1023])
def test_recordio_record_is_what_the_sdk_writes_and_reads(size: int) -> None:
    payload = random.Random(size).randbytes(size)
    ours = recordio.record(payload)
    theirs = io.BytesIO()
    _write_recordio(theirs, payload)
    assert ours == theirs.getvalue()
    assert len(ours) % 4 == 0
    assert list(read_recordio(io.BytesIO(ours * 2))) == [payload, payload]
    assert recordio.split_records(ours * 2) == [payload, payload]


def test_recordio_refuses_a_record_its_length_word_cannot_hold() -> None:
    assert recordio.header(recordio.MAX_RECORD_BYTES)[4:] == b"\xff\xff\xff\x1f"
    with pytest.raises(recordio.RecordTooLarge):
        recordio.header(recordio.MAX_RECORD_BYTES + 1)


# -- gzip --------------------------------------------------------------------------------------


def test_gunzip_reads_members_one_after_another_across_chunk_boundaries() -> None:
    data = gzip.compress(b"first ") + gzip.compress(b"second")
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert b"".join(gunzip(chunks)) == b"first second"
    assert b"".join(gunzip([])) == b""


def test_gunzip_yields_bounded_chunks_of_data_that_compresses_well() -> None:
    data = gzip.compress(bytes(5 * CHUNK_BYTES + 17))
    sizes = [len(c) for c in gunzip([data])]
    assert sum(sizes) == 5 * CHUNK_BYTES + 17
    assert max(sizes) <= CHUNK_BYTES


def test_gunzip_says_when_a_member_is_cut_short() -> None:
    data = gzip.compress(random.Random(1).randbytes(4096))
    with pytest.raises(TruncatedGzip):
        b"".join(gunzip([data[:-10]]))


# -- order and shards --------------------------------------------------------------------------


KEYS = [f"k{i:02d}" for i in range(20)]


def test_without_a_seed_every_epoch_reads_key_order() -> None:
    assert ordered(KEYS, None, 0) == KEYS
    assert ordered(KEYS, None, 5) == KEYS


def test_a_seed_reshuffles_every_epoch_the_same_way_each_time() -> None:
    epochs = [ordered(KEYS, 1234, epoch) for epoch in range(4)]
    assert all(sorted(e) == KEYS for e in epochs)
    assert len({tuple(e) for e in epochs}) == 4
    assert epochs == [ordered(KEYS, 1234, epoch) for epoch in range(4)]
    # Epoch 0 is the order File mode stages with the same seed.
    first = list(KEYS)
    random.Random(1234).shuffle(first)
    assert epochs[0] == first
    assert ordered(KEYS, 99, 1) != epochs[1]


def test_shards_of_an_epoch_split_its_objects_among_the_hosts() -> None:
    for epoch in range(3):
        parts = [host_objects(KEYS, 7, i, 3, True, epoch) for i in (1, 2, 3)]
        assert sorted(k for part in parts for k in part) == KEYS
        assert [len(p) for p in parts] == [7, 7, 6]
        assert parts[0] == shard(ordered(KEYS, 7, epoch), 1, 3)
    moved = host_objects(KEYS, 7, 1, 3, True, 0) != host_objects(KEYS, 7, 1, 3, True, 1)
    assert moved, "with a seed, a host's shard changes from one epoch to the next"
    assert host_objects(KEYS, None, 2, 3, False, 4) == KEYS


# -- staging and the feeder --------------------------------------------------------------------


def _request(uri: str, mode: str, hosts: int = 1, **channel: Any) -> dict[str, Any]:
    s3: dict[str, Any] = {"S3DataType": "S3Prefix", "S3Uri": uri}
    if "distribution" in channel:
        s3["S3DataDistributionType"] = channel.pop("distribution")
    return {
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": mode},
        "InputDataConfig": [
            {"ChannelName": "train", "DataSource": {"S3DataSource": s3}, **channel}
        ],
        "OutputDataConfig": {"S3OutputPath": "/unused"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": hosts},
    }


def _prepare(root: Path, request: dict[str, Any], name: str) -> tuple[JobSpec, Workspace]:
    spec = JobSpec.from_request(name, ARN, "us-east-1", request)
    workspace = Workspace.at(root, spec)
    workspace.create(spec)
    Stager(_storage()).stage(spec, workspace, lambda: False)
    return spec, workspace


def _storage() -> Storage:
    return Storage(LocalStore, LocalStore())


def _data(root: Path, files: dict[str, bytes]) -> Path:
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return root


def test_pipe_shards_and_file_mode_shards_agree(tmp_path: Path) -> None:
    files = {f"d{i % 3}/part-{i}.csv": str(i).encode() for i in range(8)}
    data = _data(tmp_path / "data", files)
    for seed in (None, 42):
        extra = {} if seed is None else {"ShuffleConfig": {"Seed": seed}}
        _, file_ws = _prepare(
            tmp_path / "jobs",
            _request(str(data), "File", 3, distribution="ShardedByS3Key", **extra),
            f"file-{seed}",
        )
        pipe_spec, pipe_ws = _prepare(
            tmp_path / "jobs",
            _request(str(data), "Pipe", 3, distribution="ShardedByS3Key", **extra),
            f"pipe-{seed}",
        )
        plan = read_plan(plan_path(pipe_ws, "train"))
        for file_hw, pipe_hw in zip(file_ws.hosts, pipe_ws.hosts, strict=True):
            staged = sorted(
                str(p.relative_to(file_ws.channels_dir / "train" / file_hw.host.name))
                for p in (file_ws.channels_dir / "train" / file_hw.host.name).rglob("*.csv")
            )
            (feeder,) = host_pipes(pipe_spec, pipe_ws, pipe_hw, _storage())
            piped = sorted(
                os.path.relpath(o.location.path, data) for o in feeder.epoch_objects(plan, 0)
            )
            assert staged == piped, pipe_hw.host.name
            assert staged, "every host of 3 gets some of 8 objects"
            # The container sees a FIFO for epoch 0 and no channel directory.
            assert fifo_path(pipe_hw, "train", 0).is_fifo()
            assert not (pipe_hw.data_dir / "train").exists()
            assert input_data_config(pipe_spec, pipe_hw.host)["train"]["TrainingInputMode"] == (
                "Pipe"
            )


def read_fifo(path: Path, limit: int | None = None, timeout: float = 30.0) -> bytes:
    """Read ``path`` to its end (or ``limit`` bytes, then close early) without ever blocking
    past ``timeout``: the read end is opened non-blocking and polled."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} never appeared")
        time.sleep(0.01)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        data = bytearray()
        while time.monotonic() < deadline:
            if not poller.poll(100):
                continue
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                return bytes(data)
            data += chunk
            if limit is not None and len(data) >= limit:
                return bytes(data)
        raise AssertionError(f"{path.name} was not fed to its end in {timeout} s")
    finally:
        os.close(fd)


class Running:
    """A feeder in a thread, stopped (and checked to have stopped) by the test."""

    def __init__(self, feeder: PipeFeeder) -> None:
        self.stopping = threading.Event()
        self.warnings: list[str] = []
        self.thread = threading.Thread(target=self._run, args=(feeder,), daemon=True)
        self.thread.start()

    def _run(self, feeder: PipeFeeder) -> None:
        self.warnings = feeder.run(self.stopping)

    def stop(self) -> list[str]:
        self.stopping.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the feeder did not notice stopping"
        return self.warnings


def test_feeder_epochs_key_order_and_a_reader_that_closes_early(tmp_path: Path) -> None:
    big = random.Random(3).randbytes(3 << 20)
    data = _data(tmp_path / "data", {"b.bin": big, "a/x.txt": b"AX", "c.txt": b"C"})
    spec, workspace = _prepare(tmp_path / "jobs", _request(str(data), "Pipe"), "feed")
    hw = workspace.hosts[0]
    (feeder,) = host_pipes(spec, workspace, hw, _storage())
    running = Running(feeder)
    try:
        everything = b"AX" + big + b"C"
        assert read_fifo(fifo_path(hw, "train", 0)) == everything
        assert fifo_path(hw, "train", 1).is_fifo(), "the next epoch's FIFO is there at EOF"
        # Epoch 1: the reader takes 1 MiB and closes; the feeder moves on to epoch 2.
        assert read_fifo(fifo_path(hw, "train", 1), limit=1 << 20)[:2] == b"AX"
        assert read_fifo(fifo_path(hw, "train", 2)) == everything
    finally:
        warnings = running.stop()
    assert warnings == []
    # Nobody opened epoch 3: the feeder left it waiting, and stopped.
    assert fifo_path(hw, "train", 3).is_fifo()


def test_feeder_gunzips_and_frames_records_in_the_epochs_shuffled_order(tmp_path: Path) -> None:
    bodies = {f"r{i}.gz": random.Random(i).randbytes(1000 + i) for i in range(6)}
    data = _data(tmp_path / "data", {k: gzip.compress(v) for k, v in bodies.items()})
    request = _request(
        str(data),
        "Pipe",
        CompressionType="Gzip",
        RecordWrapperType="RecordIO",
        ShuffleConfig={"Seed": 5},
    )
    spec, workspace = _prepare(tmp_path / "jobs", request, "records")
    hw = workspace.hosts[0]
    (feeder,) = host_pipes(spec, workspace, hw, _storage())
    running = Running(feeder)
    try:
        epochs = [read_fifo(fifo_path(hw, "train", epoch)) for epoch in range(3)]
    finally:
        assert running.stop() == []
    keys = sorted(bodies)
    for epoch, stream in enumerate(epochs):
        expected = [bodies[k] for k in ordered(keys, 5, epoch)]
        assert list(read_recordio(io.BytesIO(stream))) == expected
    assert len({tuple(recordio.split_records(e)) for e in epochs}) == 3


def test_feeder_frames_uncompressed_objects_from_their_listed_size(tmp_path: Path) -> None:
    data = _data(tmp_path / "data", {"a": b"12345", "b": b"", "c": b"abcdefgh"})
    request = _request(str(data), "Pipe", RecordWrapperType="RecordIO")
    spec, workspace = _prepare(tmp_path / "jobs", request, "sized")
    hw = workspace.hosts[0]
    (feeder,) = host_pipes(spec, workspace, hw, _storage())
    running = Running(feeder)
    try:
        stream = read_fifo(fifo_path(hw, "train", 0))
    finally:
        assert running.stop() == []
    assert list(read_recordio(io.BytesIO(stream))) == [b"12345", b"", b"abcdefgh"]


def test_feeder_that_nobody_reads_stops_when_told(tmp_path: Path) -> None:
    data = _data(tmp_path / "data", {"a": b"1"})
    spec, workspace = _prepare(tmp_path / "jobs", _request(str(data), "Pipe"), "unread")
    (feeder,) = host_pipes(spec, workspace, workspace.hosts[0], _storage())
    running = Running(feeder)
    time.sleep(0.1)  # let it wait for a reader (the test holds for any value)
    assert running.stop() == []


def test_feeder_goes_on_from_the_latest_epoch_a_previous_worker_made(tmp_path: Path) -> None:
    data = _data(tmp_path / "data", {"a": b"payload"})
    spec, workspace = _prepare(tmp_path / "jobs", _request(str(data), "Pipe"), "taken-over")
    hw = workspace.hosts[0]
    os.mkfifo(fifo_path(hw, "train", 1))
    os.mkfifo(fifo_path(hw, "train", 2))
    (feeder,) = host_pipes(spec, workspace, hw, _storage())
    running = Running(feeder)
    try:
        assert read_fifo(fifo_path(hw, "train", 2)) == b"payload"
        assert read_fifo(fifo_path(hw, "train", 3)) == b"payload"
    finally:
        assert running.stop() == []


@pytest.mark.parametrize("planted", ["fifo", "data-directory"])
def test_feeder_never_follows_a_link_the_container_put_in_its_tree(
    tmp_path: Path, planted: str
) -> None:
    """The container owns /opt/ml: a link in place of a FIFO (or of input/data) must not make
    the feeder open, create or write anything outside the host's tree."""
    data = _data(tmp_path / "data", {"a": b"channel bytes"})
    spec, workspace = _prepare(tmp_path / "jobs", _request(str(data), "Pipe"), f"link-{planted}")
    hw = workspace.hosts[0]
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"precious")
    if planted == "fifo":
        fifo_path(hw, "train", 0).unlink()
        fifo_path(hw, "train", 0).symlink_to(victim)
    else:
        hw.data_dir.rename(hw.root / "input" / "moved")
        hw.data_dir.symlink_to(outside)
    (feeder,) = host_pipes(spec, workspace, hw, _storage())
    running = Running(feeder)
    running.thread.join(10)  # it gives up by itself
    warnings = running.stop()
    assert len(warnings) == 1 and "feeding channel 'train' stopped" in warnings[0], warnings
    assert victim.read_bytes() == b"precious"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]


def test_manifest_entries_are_framed_without_a_listed_size(tmp_path: Path) -> None:
    data = _data(tmp_path / "pool", {"one": b"1" * 5, "sub/two": b"22", "unlisted": b"x"})
    manifest = tmp_path / "train.manifest"
    manifest.write_text(f'[{{"prefix": "file://{data}/"}}, "sub/two", "one"]')
    request = _request(str(manifest), "Pipe", RecordWrapperType="RecordIO")
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] = "ManifestFile"
    spec, workspace = _prepare(tmp_path / "jobs", request, "manifest")
    hw = workspace.hosts[0]
    assert [o.size for o in read_plan(plan_path(workspace, "train"))] == [None, None]
    (feeder,) = host_pipes(spec, workspace, hw, _storage())
    running = Running(feeder)
    try:
        stream = read_fifo(fifo_path(hw, "train", 0))
    finally:
        assert running.stop() == []
    # The manifest's order, as File mode lists it.
    assert list(read_recordio(io.BytesIO(stream))) == [b"22", b"11111"]

"""The Pipe feeder reading a channel from a real S3 endpoint (moto): the objects are opened ahead
of the one being written, a reader that leaves early ends its epoch, and the next epoch gets every
byte. The feeder's logic without S3 is in tests/unit/test_pipes.py."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from tests.unit.test_pipes import ARN, Running, _request, read_fifo
from trainforge.runtime.fifos import fifo_path
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.pipes import host_pipes
from trainforge.runtime.staging import Stager
from trainforge.runtime.workspace import Workspace
from trainforge.storage.base import Storage
from trainforge.storage.local import LocalStore


def test_s3_channel_read_ahead_reader_leaves_early_then_reads_the_next_epoch_whole(
    tmp_path: Path, bucket: str, s3: Any
) -> None:
    from trainforge.storage.s3 import S3Store

    bodies = [random.Random(i).randbytes(300_000) for i in range(12)]
    for i, body in enumerate(bodies):
        s3.put_object(Bucket=bucket, Key=f"pipe/part-{i:02d}", Body=body)
    storage = Storage(lambda: S3Store("us-east-1"), LocalStore())
    request = _request(f"s3://{bucket}/pipe/", "Pipe")
    spec = JobSpec.from_request("s3-early", ARN, "us-east-1", request)
    workspace = Workspace.at(tmp_path / "jobs", spec)
    workspace.create(spec)
    Stager(storage).stage(spec, workspace, lambda: False)
    hw = workspace.hosts[0]
    (feeder,) = host_pipes(spec, workspace, hw, storage)
    running = Running(feeder)
    try:
        first = read_fifo(fifo_path(hw, "train", 0), limit=100_000)
        assert len(first) >= 100_000 and first == b"".join(bodies)[: len(first)]
        assert read_fifo(fifo_path(hw, "train", 1)) == b"".join(bodies)
    finally:
        assert running.stop() == []

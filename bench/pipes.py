"""Pipe mode from a local channel (row 11): how fast trainforge's feeder fills an epoch's FIFO,
against `cat` of the same files into a FIFO. Both sides are read by the same reader (`dd` into
/dev/null, a process of its own, as an algorithm is) and timed from the reader's start to its
end; the files are in the page cache for both, so the row measures the feeding, not the disk.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.common import Row, alternate, median

FILES = 2
FILE_MIB = 512


def pipe_local_channel(runs: int) -> Row:
    from trainforge.runtime.fifos import fifo_path
    from trainforge.runtime.jobspec import JobSpec
    from trainforge.runtime.pipes import host_pipes
    from trainforge.runtime.staging import Stager
    from trainforge.runtime.workspace import Workspace
    from trainforge.storage.base import Storage
    from trainforge.storage.local import LocalStore

    storage = Storage(LocalStore, LocalStore())
    with tempfile.TemporaryDirectory(prefix="tf-pipe-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        chunk = os.urandom(1 << 20)
        for i in range(FILES):
            with open(data / f"part-{i}.bin", "wb") as fh:
                for _ in range(FILE_MIB):
                    fh.write(chunk)
        files = sorted(str(p) for p in data.iterdir())
        total = FILES * FILE_MIB << 20
        request = {
            "AlgorithmSpecification": {"TrainingImage": "unused", "TrainingInputMode": "Pipe"},
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"file://{data}"}
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": "/unused"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        }
        spec = JobSpec.from_request("pipe-bench", "arn", "us-east-1", request)
        workspace = Workspace.at(Path(tmp) / "jobs", spec)
        workspace.create(spec)
        Stager(storage).stage(spec, workspace, lambda: False)
        hw = workspace.hosts[0]
        (feeder,) = host_pipes(spec, workspace, hw, storage)
        stopping = threading.Event()
        thread = threading.Thread(target=feeder.run, args=(stopping,), daemon=True)
        thread.start()
        epoch = 0

        def trainforge_side() -> float:
            nonlocal epoch
            fifo = fifo_path(hw, "train", epoch)
            epoch += 1
            return _read(fifo, total)

        cat_fifo = Path(tmp) / "cat.fifo"
        os.mkfifo(cat_fifo)

        def cat_side() -> float:
            writer = subprocess.Popen(
                f"cat {' '.join(files)} > {cat_fifo}", shell=True, stderr=subprocess.DEVNULL
            )
            try:
                return _read(cat_fifo, total)
            finally:
                writer.wait(timeout=60)

        try:
            ours, cats = alternate(trainforge_side, cat_side, runs)
        finally:
            stopping.set()
            thread.join(10)
    value, baseline = median(ours), median(cats)
    ratio = (total / value) / (total / baseline)
    mib = total >> 20
    return Row(
        "11",
        f"Pipe from a local channel ({FILES} × {FILE_MIB} MiB) vs `cat` into a FIFO: throughput",
        f"{mib / value:,.0f} MiB/s",
        f"{mib / baseline:,.0f} MiB/s (`cat` of the same files into a FIFO)",
        f"{ratio:.2f}×",
        "≥ 0.80×",
        ratio >= 0.80,
    )


def _read(fifo: Path, total: int) -> float:
    """Seconds for `dd` to read the FIFO to its end into /dev/null; it must get ``total`` bytes."""
    start = time.perf_counter()
    reader = subprocess.run(
        ["dd", f"if={fifo}", "of=/dev/null", "bs=1M"], capture_output=True, text=True, timeout=300
    )
    elapsed = time.perf_counter() - start
    summary = reader.stderr.strip().splitlines()[-1] if reader.stderr.strip() else ""
    got = int(summary.split()[0]) if summary[:1].isdigit() else -1
    if got != total:
        raise RuntimeError(f"the reader of {fifo.name} got {got} bytes of {total}: {summary}")
    return elapsed

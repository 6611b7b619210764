"""Benchmarks 3 and 4: staging an S3 prefix into a channel (1 GiB in 16 objects plus 2,000
objects of 4 KiB, from moto's server) against `aws s3 sync` of the same prefix; the same from
s3s-fs, a fast S3 server, so that moto is not what caps the rate (3c: against the faster of
`aws s3 sync` and boto3's CRT transfer client); and a 2 GiB local-path channel, which must be
staged without a copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import (
    BIN,
    CACHE,
    CRT_PYTHON,
    ROOT,
    Row,
    alternate,
    client,
    env_with,
    fmt_seconds,
    measure,
    median,
    moto_server,
    s3s_server,
)

LARGE_OBJECTS = 16
LARGE_SIZE = 64 << 20
SMALL_OBJECTS = 2000
SMALL_SIZE = 4096


def _fill(endpoint: str, bucket: str) -> None:
    s3 = client("s3", endpoint)
    s3.create_bucket(Bucket=bucket)
    block = os.urandom(LARGE_SIZE)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: s3.put_object(
                    Bucket=bucket, Key=f"dataset/large/part-{i:02d}.bin", Body=block[i:] + block[:i]
                ),
                range(LARGE_OBJECTS),
            )
        )
        list(
            pool.map(
                lambda i: s3.put_object(
                    Bucket=bucket,
                    Key=f"dataset/small/{i // 100:02d}/item-{i:04d}.json",
                    Body=os.urandom(SMALL_SIZE),
                ),
                range(SMALL_OBJECTS),
            )
        )


def _tree_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def s3_staging(runs: int) -> list[Row]:
    with (
        moto_server() as endpoint,
        tempfile.TemporaryDirectory(
            prefix="tf-stage-", dir=CACHE.parent if CACHE.parent.exists() else None
        ) as tmp,
    ):
        _fill(endpoint, "bench-data")
        env = env_with(AWS_ENDPOINT_URL_S3=endpoint, TRAINFORGE_HOME=str(Path(tmp) / "home"))
        ours_cpu: list[float] = []
        theirs_cpu: list[float] = []
        sizes: set[tuple[int, int]] = set()

        def trainforge_side() -> float:
            dest = Path(tmp) / "tf"
            shutil.rmtree(dest, ignore_errors=True)
            result = measure(
                [
                    sys.executable,
                    "-m",
                    "bench.stage_channel",
                    "s3://bench-data/dataset/",
                    str(dest),
                ],
                env=env,
            )
            assert result.returncode == 0, "staging failed"
            sizes.add(_tree_size(dest / "stage-bench" / "channels" / "train"))
            ours_cpu.append(result.cpu)
            return result.wall

        def sync_side() -> float:
            dest = Path(tmp) / "sync"
            shutil.rmtree(dest, ignore_errors=True)
            result = measure(
                [
                    str(BIN / "aws"),
                    "s3",
                    "sync",
                    "--only-show-errors",
                    "s3://bench-data/dataset/",
                    str(dest),
                ],
                env=env,
            )
            assert result.returncode == 0, "aws s3 sync failed"
            sizes.add(_tree_size(dest))
            theirs_cpu.append(result.cpu)
            return result.wall

        ours, theirs = alternate(trainforge_side, sync_side, runs, warmup=1)
    total = LARGE_OBJECTS * LARGE_SIZE + SMALL_OBJECTS * SMALL_SIZE
    wall_ratio = median(ours) / median(theirs)
    cpu_ratio = median(ours_cpu) / median(theirs_cpu)
    notes = (
        []
        if sizes == {(LARGE_OBJECTS + SMALL_OBJECTS, total)}
        else [f"staged trees differ: {sizes}"]
    )
    mib = total / (1 << 20)
    return [
        Row(
            "3a",
            "S3 staging, 1 GiB in 16 objects + 2,000 × 4 KiB: wall time",
            f"{fmt_seconds(median(ours))} ({mib / median(ours):.0f} MiB/s)",
            f"{fmt_seconds(median(theirs))} (aws s3 sync)",
            f"{wall_ratio:.2f}×",
            "≤ 1.0×",
            wall_ratio <= 1.0,
            notes,
        ),
        Row(
            "3b",
            "S3 staging, same data: client CPU time",
            f"{median(ours_cpu):.2f} s",
            f"{median(theirs_cpu):.2f} s (aws s3 sync)",
            f"{cpu_ratio:.2f}×",
            "≤ 0.5×",
            cpu_ratio <= 0.5,
        ),
    ]


def s3s_staging(runs: int) -> list[Row]:
    """3c: throughput from s3s-fs; trainforge, `aws s3 sync` and the CRT client take turns."""
    with (
        s3s_server() as endpoint,
        tempfile.TemporaryDirectory(prefix="tf-stage-s3s-", dir=CACHE) as tmp,
    ):
        _fill(endpoint, "bench-data")
        env = env_with(AWS_ENDPOINT_URL_S3=endpoint, TRAINFORGE_HOME=str(Path(tmp) / "home"))
        uri = "s3://bench-data/dataset/"
        sides = {
            "trainforge": (
                [sys.executable, "-m", "bench.stage_channel", uri],
                ("stage-bench", "channels", "train"),
            ),
            "aws s3 sync": ([str(BIN / "aws"), "s3", "sync", "--only-show-errors", uri], ()),
            "boto3 CRT": ([str(CRT_PYTHON), str(ROOT / "bench" / "crt_sync.py"), uri], ()),
        }
        walls: dict[str, list[float]] = {name: [] for name in sides}
        sizes: set[tuple[int, int]] = set()
        for run in range(runs + 1):
            for name, (cmd, tree) in sides.items():
                dest = Path(tmp) / "dest"
                shutil.rmtree(dest, ignore_errors=True)
                result = measure([*cmd, str(dest)], env=env)
                assert result.returncode == 0, f"{name} failed"
                sizes.add(_tree_size(dest.joinpath(*tree)))
                if run:  # the first round warms the page cache and s3s-fs
                    walls[name].append(result.wall)
    total = LARGE_OBJECTS * LARGE_SIZE + SMALL_OBJECTS * SMALL_SIZE
    mib = total / (1 << 20)
    rates = {name: mib / median(values) for name, values in walls.items()}
    best = max((n for n in rates if n != "trainforge"), key=rates.__getitem__)
    ratio = rates["trainforge"] / rates[best]
    notes = [", ".join(f"{n}: {rates[n]:.0f} MiB/s ({median(walls[n]):.2f} s)" for n in rates)]
    if sizes != {(LARGE_OBJECTS + SMALL_OBJECTS, total)}:
        notes.append(f"staged trees differ: {sizes}")
    return [
        Row(
            "3c",
            "S3 staging from s3s-fs (a fast S3 server), same data: throughput",
            f"{rates['trainforge']:.0f} MiB/s",
            f"{rates[best]:.0f} MiB/s ({best}, the faster client)",
            f"{ratio:.2f}×",
            "≥ 0.90×",
            ratio >= 0.90 and len(sizes) == 1,
            notes,
        )
    ]


def local_channel(runs: int) -> Row:
    from trainforge.runtime.jobspec import JobSpec
    from trainforge.runtime.staging import Stager
    from trainforge.runtime.workspace import Workspace
    from trainforge.storage.base import Storage
    from trainforge.storage.local import LocalStore

    with tempfile.TemporaryDirectory(prefix="tf-local-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        for i in range(2):
            subprocess.run(["fallocate", "-l", "1G", str(data / f"part-{i}.bin")], check=True)
        request = {
            "AlgorithmSpecification": {"TrainingImage": "unused", "TrainingInputMode": "File"},
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
        stager = Stager(Storage(LocalStore, LocalStore()))
        times = []
        for run in range(runs + 1):
            spec = JobSpec.from_request(f"local-{run}", "arn", "us-east-1", request)
            workspace = Workspace.at(Path(tmp) / "jobs", spec)
            workspace.create(spec)
            start = time.perf_counter()
            report = stager.stage(spec, workspace, lambda: False)
            times.append(time.perf_counter() - start)
            assert report.bytes == 0 and report.mounts["algo-1"][0].source == str(data)
        times = times[1:]
    value = median(times)
    return Row(
        "4",
        "local-path channel of 2 GiB: staging time (a read-only mount, no copy)",
        fmt_seconds(value),
        "—",
        "—",
        "O(1), < 50 ms",
        value < 0.05,
    )

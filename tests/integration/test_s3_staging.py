"""Two jobs staging File-mode channels from a real S3 endpoint (moto's server) at the same time,
through one shared store as the server's jobs do: each gets every byte of its own objects (small
ones in one GET each, large ones as ranged GETs), checked by SHA-256; and a staging stopped
part-way does not break the other job's transfers or the next staging."""

from __future__ import annotations

import hashlib
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from trainforge.errors import StorageCancelled
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.staging import Stager
from trainforge.runtime.workspace import Workspace
from trainforge.storage.base import Storage
from trainforge.storage.local import LocalStore
from trainforge.storage.s3 import S3Store

ARN = "arn:aws:iam::000000000000:role/staging"
_MiB = 1 << 20


def _request(uri: str) -> dict[str, Any]:
    return {
        "RoleArn": ARN,
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "/unused"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }


def _put(s3: Any, bucket: str, prefix: str, sizes: list[int], seed: int) -> dict[str, str]:
    """Objects of the given sizes under ``prefix``; their SHA-256 by path in the channel."""
    rng = random.Random(seed)
    digests: dict[str, str] = {}

    def one(index: int) -> None:
        body = rng.randbytes(sizes[index]) if sizes[index] < _MiB else _big(seed, index, sizes)
        name = f"part-{index:03d}.bin" if sizes[index] >= _MiB else f"d{index % 7}/o-{index}.json"
        s3.put_object(Bucket=bucket, Key=f"{prefix}{name}", Body=body)
        digests[name] = hashlib.sha256(body).hexdigest()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(len(sizes))))
    return digests


def _big(seed: int, index: int, sizes: list[int]) -> bytes:
    return random.Random(seed * 1000 + index).randbytes(sizes[index])


def _staged(workspace: Workspace) -> dict[str, str]:
    root = workspace.channels_dir / "train"
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }


class _CountingStore(S3Store):
    """The S3 store, counting the GETs that had to go again through botocore's full client
    (the lean GET could not finish: an error answer, a connection closed under it)."""

    def __init__(self) -> None:
        # A small part size, so that many ranged GETs are in flight when the other job's
        # download ends.
        super().__init__("us-east-1", part_size=_MiB, multipart_threshold=4 * _MiB)
        self.fallbacks = 0
        self._counting = threading.Lock()

    def _fetch_botocore(self, *args: Any) -> int:
        with self._counting:
            self.fallbacks += 1
        return super()._fetch_botocore(*args)


def _shared_storage() -> tuple[Storage, _CountingStore]:
    """One S3 store for every job, as a server's context has."""
    store = _CountingStore()
    return Storage(lambda: store, LocalStore()), store


def _job(root: Path, name: str, uri: str) -> tuple[JobSpec, Workspace]:
    spec = JobSpec.from_request(name, f"{ARN}/{name}", "us-east-1", _request(uri))
    workspace = Workspace.at(root, spec)
    workspace.create(spec)
    return spec, workspace


@pytest.fixture(scope="module")
def channels(s3_endpoint: str) -> tuple[str, dict[str, str], dict[str, str]]:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = "tf-concurrent-staging"
    s3.create_bucket(Bucket=bucket)
    rng = random.Random(7)
    # Job a: many small objects and one large one, so it ends while b's ranged GETs still run.
    small_a = [rng.randrange(1, 20_000) for _ in range(120)]
    first = _put(s3, bucket, "a/", [*small_a, 6 * _MiB], seed=1)
    small_b = [rng.randrange(1, 20_000) for _ in range(60)]
    second = _put(s3, bucket, "b/", [*small_b, 12 * _MiB, 9 * _MiB + 5], seed=2)
    return bucket, first, second


def test_two_jobs_staging_at_once_from_one_store_both_get_every_byte(
    tmp_path: Path, channels: tuple[str, dict[str, str], dict[str, str]]
) -> None:
    bucket, first, second = channels
    storage, store = _shared_storage()
    jobs = [
        _job(tmp_path, "stage-a", f"s3://{bucket}/a/"),
        _job(tmp_path, "stage-b", f"s3://{bucket}/b/"),
    ]
    start = threading.Barrier(2, timeout=60)

    def stage(job: tuple[JobSpec, Workspace]) -> int:
        start.wait()
        return Stager(storage).stage(job[0], job[1], lambda: False).objects

    with ThreadPoolExecutor(2) as pool:
        counts = list(pool.map(stage, jobs))
    assert counts == [len(first), len(second)]
    assert _staged(jobs[0][1]) == first
    assert _staged(jobs[1][1]) == second
    # Neither job's end broke a GET of the other's.
    assert store.fallbacks == 0


def test_a_staging_stopped_part_way_leaves_the_other_and_the_next_whole(
    tmp_path: Path, channels: tuple[str, dict[str, str], dict[str, str]]
) -> None:
    bucket, first, second = channels
    storage, store = _shared_storage()
    stopped = _job(tmp_path, "stage-stopped", f"s3://{bucket}/b/")
    whole = _job(tmp_path, "stage-whole", f"s3://{bucket}/a/")
    stop = threading.Event()
    start = threading.Barrier(2, timeout=60)

    def stopping() -> None:
        start.wait()
        # Stopped after a few of its GETs, while the other job's are in flight.
        calls = iter(range(20))
        with pytest.raises(StorageCancelled):
            Stager(storage).stage(
                stopped[0], stopped[1], lambda: next(calls, None) is None or stop.is_set()
            )

    def staging() -> int:
        start.wait()
        return Stager(storage).stage(whole[0], whole[1], lambda: False).objects

    with ThreadPoolExecutor(2) as pool:
        cancelled = pool.submit(stopping)
        done = pool.submit(staging)
        cancelled.result()
        assert done.result() == len(first)
    assert _staged(whole[1]) == first
    again = _job(tmp_path, "stage-again", f"s3://{bucket}/b/")
    assert Stager(storage).stage(again[0], again[1], lambda: False).objects == len(second)
    assert _staged(again[1]) == second
    assert store.fallbacks == 0

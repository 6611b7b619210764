"""Pipe-mode channels end to end (spec §7.4-§7.6): a two-host job on the local engine whose
python container reads FIFOs fed from moto's S3 and from a local path: two epochs of gzipped,
RecordIO-framed, shuffled objects; a local channel read to its end, then closed early; a
ShardedByS3Key channel split between the hosts; epochs nobody opens. The job must complete."""

from __future__ import annotations

import gzip
import hashlib
import random
from pathlib import Path

import pytest

from tests.support import channel, code_channel, job_request, log_messages, run_job
from trainforge.runtime.selection import ordered

pytestmark = pytest.mark.docker

READER = r"""
import hashlib, json, os, struct, time

host = json.load(open("/opt/ml/input/config/resourceconfig.json"))["current_host"]
config = json.load(open("/opt/ml/input/config/inputdataconfig.json"))
modes = {name: entry["TrainingInputMode"] for name, entry in sorted(config.items())}
print(host, "modes", json.dumps(modes), flush=True)
print(host, "tree", " ".join(sorted(os.listdir("/opt/ml/input/data"))), flush=True)


def fifo(name, epoch):
    path = "/opt/ml/input/data/%s_%d" % (name, epoch)
    for _ in range(600):
        if os.path.exists(path):
            return path
        time.sleep(0.05)
    raise SystemExit(path + " never appeared")


def read(name, epoch, limit=None):
    with open(fifo(name, epoch), "rb") as fh:
        return fh.read(limit) if limit else fh.read()


def records(data):
    found, offset = [], 0
    while offset < len(data):
        magic, length = struct.unpack_from("<II", data, offset)
        assert magic == 0xCED7230A, hex(magic)
        found.append(data[offset + 8 : offset + 8 + length])
        offset += 8 + length + (-length % 4)
    return found


def digest(data):
    return hashlib.sha256(data).hexdigest()[:16]


for epoch in (0, 1):
    print(host, "train", epoch, " ".join(digest(r) for r in records(read("train", epoch))), flush=True)
whole = read("local", 0)
print(host, "local 0", len(whole), digest(whole), flush=True)
print(host, "local 1 early", read("local", 1, 6).decode(), flush=True)
print(host, "shard 0", read("shard", 0).decode(), flush=True)
"""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def test_pipe_channels_from_s3_and_a_local_path_on_two_hosts(
    images: dict[str, str], home: Path, bucket: str, s3: object
) -> None:
    rng = random.Random(2026)
    bodies = {f"records/part-{i}.gz": rng.randbytes(900 + 37 * i) for i in range(5)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body))  # type: ignore[attr-defined]
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"shards/part-{i}.txt", Body=str(i).encode())  # type: ignore[attr-defined]
    local = home / "local-data"
    local.mkdir()
    # More than a pipe holds, so the reader that stops early leaves the writer mid-way.
    big = b"early!" + rng.randbytes(4 << 20)
    (local / "a.bin").write_bytes(big)
    (local / "b.txt").write_bytes(b"tail")
    request = job_request(
        images["python"],
        f"file://{home / 'output'}",
        channels=[
            code_channel(home / "code", READER, name="read.py"),
            channel(
                "train",
                f"s3://{bucket}/records/",
                InputMode="Pipe",
                CompressionType="Gzip",
                RecordWrapperType="RecordIO",
                ShuffleConfig={"Seed": 11},
            ),
            channel("local", f"file://{local}", InputMode="Pipe"),
            channel(
                "shard", f"s3://{bucket}/shards/", InputMode="Pipe", distribution="ShardedByS3Key"
            ),
        ],
        entrypoint=["python3", "/opt/ml/input/data/code/read.py"],
    )
    request["ResourceConfig"]["InstanceCount"] = 2
    result = run_job(home, request)
    assert result.status == "Completed", (result.stderr, result.describe)

    lines = [line.split(" | ", 1)[-1] for line in log_messages(home, request["TrainingJobName"])]
    assert all(line.startswith(("algo-1 ", "algo-2 ")) for line in lines), lines
    by_host = {
        host: [line.split(" ", 1)[1] for line in lines if line.startswith(host + " ")]
        for host in ("algo-1", "algo-2")
    }
    keys = sorted(bodies)
    # Epoch 0 in the order File mode stages with the seed; epoch 1 in another permutation.
    first = list(keys)
    random.Random(11).shuffle(first)
    second = ordered(keys, 11, 1)
    assert sorted(second) == keys and second != first
    for host, shard in (("algo-1", "024"), ("algo-2", "13")):
        assert by_host[host] == [
            'modes {"code": "File", "local": "Pipe", "shard": "Pipe", "train": "Pipe"}',
            "tree code local_0 shard_0 train_0",
            "train 0 " + " ".join(_digest(bodies[k]) for k in first),
            "train 1 " + " ".join(_digest(bodies[k]) for k in second),
            f"local 0 {len(big) + 4} {_digest(big + b'tail')}",
            "local 1 early early!",
            f"shard 0 {shard}",
        ], host
    # The hosts' trees went through the usual collect step, FIFOs and all.
    assert (home / "output" / request["TrainingJobName"] / "output" / "model.tar.gz").exists()

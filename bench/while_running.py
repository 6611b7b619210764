"""Benchmarks 12 and 13: what a job costs while it runs.

12. Scraping 40 MetricDefinitions regexes out of a job's log lines, as the log path does it (in
    batches), in lines per second; the baseline is the contract read literally (every regex on
    every line) in the same run. Target: ≥ 100,000 lines/s.
13. A container that trains (a fixed amount of CPU work) and writes 1 GiB of checkpoints in 100
    files, with CheckpointConfig on (copied to S3 while it runs) and off, alternating; the
    container's own training time is compared. Target: at most 1.10 times. The S3 endpoint (moto) runs at
    low CPU priority: it stands in for a remote service, not for work of this machine.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import BIN, Row, alternate, env_with, median, moto_server
from trainforge.runtime.metric_scraper import MetricScraper

BATCH = 10_000


def _definitions() -> list[dict[str, str]]:
    names = ["loss", "acc", "lr", "val_loss", "val_acc", "grad_norm", "throughput", "step"]
    found = []
    for i in range(40):
        name = f"{names[i % len(names)]}_{i}"
        found.append({"Name": name, "Regex": f"{name}=([-+0-9.eE]+)"})
    return found


def _lines(count: int) -> list[str]:
    """A training log: mostly progress and framework chatter, one line in 20 with metrics."""
    rng = random.Random(11)
    chatter = [
        "Epoch 3/50: 42%|████▏     | 420/1000 [00:41<00:57, 10.1it/s]",
        "INFO:root:Saving checkpoint to /opt/ml/checkpoints/step-420.pt",
        "[2026-12-02 03:00:00.000 algo-1:42 INFO utils.py:27] RULE_JOB_STOP_SIGNAL_FILENAME: None",
        "WARNING: Logging before flag parsing goes to stderr.",
        "batch 420 data-loading took 0.0031 s#011prefetch 8",
    ]
    lines = []
    for i in range(count):
        if i % 20 == 0:
            picks = rng.sample(range(40), 4)
            lines.append(
                f"step {i}: "
                + " ".join(f"{_definitions()[p]['Name']}={rng.random():.5f}" for p in picks)
            )
        else:
            lines.append(rng.choice(chatter))
    return lines


def scrape_throughput(lines: int = 400_000) -> Row:
    definitions = _definitions()
    log = _lines(lines)
    batches = [
        [(float(i), text) for i, text in enumerate(log[start : start + BATCH], start)]
        for start in range(0, len(log), BATCH)
    ]
    scraper = MetricScraper(definitions)
    compiled = [(d["Name"], re.compile(d["Regex"])) for d in definitions]

    def ours() -> float:
        began = time.perf_counter()
        for batch in batches:
            scraper.scrape("algo-1", batch)
        return time.perf_counter() - began

    def literal() -> float:
        began = time.perf_counter()
        for batch in batches:
            for _, text in batch:
                for _, regex in compiled:
                    match = regex.search(text)
                    if match is not None:
                        float(match.group(1))
        return time.perf_counter() - began

    ours_times, literal_times = alternate(ours, literal, runs=3)
    rate, base = lines / median(ours_times), lines / median(literal_times)
    return Row(
        "12",
        "40 MetricDefinitions regexes over a job's log lines",
        f"{rate:,.0f} lines/s",
        f"{base:,.0f} lines/s (every regex on every line)",
        f"{rate / base:.1f}× faster",
        "≥ 100,000 lines/s",
        rate >= 100_000,
    )


_TRAIN = """
import os, time
began = time.monotonic()
os.makedirs("/opt/ml/checkpoints", exist_ok=True)
block = os.urandom(10 * 1024 * 1024)
total = 0
for step in range(100):
    x = 0
    for i in range(400_000):
        x += i * i
    with open(f"/opt/ml/checkpoints/step-{step:03d}.ckpt", "wb") as f:
        f.write(block)
    total += len(block)
print(f"train-seconds {time.monotonic() - began:.3f} bytes {total}", flush=True)
"""


def checkpoint_overhead(runs: int) -> Row:
    import images

    image = images.python_tag()
    with tempfile.TemporaryDirectory(prefix="tf-bench-ckpt-") as tmp, moto_server() as endpoint:
        subprocess.run(
            ["renice", "-n", "15", "-p", _pid_on(endpoint)], check=False, capture_output=True
        )
        env = env_with(
            TRAINFORGE_HOME=str(Path(tmp) / "home"),
            AWS_ENDPOINT_URL_S3=endpoint,
            TRAINFORGE_INSTANCE_METRICS_SECONDS="0",
        )
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",
        )
        s3.create_bucket(Bucket="bench")

        code = Path(tmp) / "code"
        code.mkdir()
        (code / "train.py").write_text(_TRAIN)

        def once(checkpoints: bool) -> float:
            name = f"ckpt-{uuid.uuid4().hex[:8]}"
            request = {
                "TrainingJobName": name,
                "RoleArn": "arn:aws:iam::000000000000:role/bench",
                "AlgorithmSpecification": {
                    "TrainingImage": image,
                    "TrainingInputMode": "File",
                    "ContainerEntrypoint": ["python3", "/opt/ml/input/data/code/train.py"],
                },
                "InputDataConfig": [
                    {
                        "ChannelName": "code",
                        "DataSource": {
                            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"file://{code}"}
                        },
                    }
                ],
                "OutputDataConfig": {"S3OutputPath": f"file://{tmp}/out"},
                "ResourceConfig": {
                    "InstanceType": "ml.m5.xlarge",
                    "InstanceCount": 1,
                    "VolumeSizeInGB": 5,
                },
                "StoppingCondition": {"MaxRuntimeInSeconds": 1800},
            }
            if checkpoints:
                request["CheckpointConfig"] = {"S3Uri": f"s3://bench/{name}/"}
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(request))
            proc = subprocess.run(
                [str(BIN / "trainforge"), "run", "--cli-input-json", f"file://{path}"],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            found = re.search(r"train-seconds ([0-9.]+) bytes (\d+)", proc.stderr)
            if proc.returncode != 0 or found is None or int(found.group(2)) != 100 * 10 << 20:
                raise RuntimeError(f"the benchmark job failed: {proc.stderr[-2000:]}")
            if checkpoints:
                listed = s3.list_objects_v2(Bucket="bench", Prefix=f"{name}/")
                if listed.get("KeyCount") != 100:
                    raise RuntimeError(f"{listed.get('KeyCount')} of 100 checkpoints reached S3")
            return float(found.group(1))

        with_sync, without = alternate(lambda: once(True), lambda: once(False), runs, warmup=0)
    ratio = median(with_sync) / median(without)
    return Row(
        "13",
        "training time with 1 GiB of checkpoints (100 files) copied to S3 while it runs",
        f"{median(with_sync):.2f} s",
        f"{median(without):.2f} s (checkpoints off)",
        f"{ratio:.2f}×",
        "≤ 1.10×",
        ratio <= 1.10,
    )


def _pid_on(endpoint: str) -> str:
    port = endpoint.rsplit(":", 1)[-1]
    out = subprocess.run(
        ["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True
    ).stdout
    found = re.search(r"pid=(\d+)", out)
    return found.group(1) if found else "0"


def rows(runs: int) -> list[Row]:
    return [scrape_throughput(), checkpoint_overhead(runs)]

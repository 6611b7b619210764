"""Benchmark 6: DescribeTrainingJob from 32 concurrent clients (wrk, keep-alive) over 10,000
stored jobs, against moto's server answering DescribeTrainingJob under the same load. Also
reports the server's peak memory with those jobs stored."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import Row, client, could_not_run, moto_server, noop_request, trainforge_server

CONNECTIONS = 32
DURATION = "10s"
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "SageMaker.DescribeTrainingJob"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"
wrk.headers["X-Amz-Date"] = "20260101T000000Z"
local count = %d
request = function()
  return wrk.format(nil, nil, nil, string.format('{"TrainingJobName":"load-%%05d"}', math.random(0, count - 1)))
end
"""


def _populate_store(home: Path, count: int) -> None:
    from trainforge.context import Context
    from trainforge.domain.status import MESSAGES, SecondaryStatus
    from trainforge.runtime.report import Outcome, OutcomeKind
    from trainforge.scheduler.lifecycle import finish
    from trainforge.settings import load_settings

    context = Context(load_settings({"TRAINFORGE_HOME": str(home)}))
    context.service.input_checker = None
    for i in range(count):
        name = f"load-{i:05d}"
        request = noop_request(name, "trainforge/busybox:bench", home / "out")
        request["HyperParameters"] = {"epochs": "10", "lr": "0.01"}
        context.service.create_training_job(request)
        jobs = context.jobs
        jobs.transition(name, SecondaryStatus.DOWNLOADING, MESSAGES["downloading_image"])
        jobs.transition(name, SecondaryStatus.TRAINING, MESSAGES["training"])
        jobs.transition(name, SecondaryStatus.UPLOADING, MESSAGES["uploading"])
        finish(jobs, name, Outcome(OutcomeKind.COMPLETED))
    context.db.close()


def _populate_moto(endpoint: str, count: int) -> None:
    sm = client("sagemaker", endpoint)

    def create(i: int) -> None:
        request = noop_request(f"load-{i:05d}", "trainforge/busybox:bench", Path("/tmp"))
        request["OutputDataConfig"]["S3OutputPath"] = "s3://bench/out"
        request["HyperParameters"] = {"epochs": "10", "lr": "0.01"}
        sm.create_training_job(**request)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(count)))


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, count: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(LUA % count)
        script.flush()
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{CONNECTIONS}",
                f"-d{DURATION}",
                "--latency",
                "-s",
                script.name,
                url + "/",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        result[f"p{pct}"] = _ms(re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = int(errors.group(1)) if errors else 0
    return result


def describe_load(count: int) -> list[Row]:
    if shutil.which("wrk") is None:
        return [
            could_not_run("6", "wrk is not installed (make bench installs it: apt-get install wrk)")
        ]
    with tempfile.TemporaryDirectory(prefix="tf-load-") as tmp:
        home = Path(tmp)
        started = time.monotonic()
        _populate_store(home, count)
        fill_seconds = time.monotonic() - started
        with trainforge_server(home) as server:
            _wrk(server.url, count)  # warm-up
            ours = _wrk(server.url, count)
            rss = server.peak_rss_kib()
    with moto_server() as endpoint:
        _populate_moto(endpoint, count)
        _wrk(endpoint, count)
        theirs = _wrk(endpoint, count)
    notes = [
        f"trainforge p50 {ours['p50']:.1f} ms, p90 {ours['p90']:.1f} ms; moto p50 {theirs['p50']:.1f} ms, p90 {theirs['p90']:.1f} ms",
        f"non-2xx answers: trainforge {ours['errors']}, moto {theirs['errors']}; {count} jobs stored in {fill_seconds:.0f} s",
    ]
    throughput = ours["rps"] / theirs["rps"]
    return [
        Row(
            "6a",
            f"DescribeTrainingJob, {CONNECTIONS} concurrent clients, {count:,} stored jobs: p99 latency",
            f"{ours['p99']:.1f} ms",
            f"{theirs['p99']:.1f} ms (moto server)",
            f"{ours['p99'] / theirs['p99']:.2f}×",
            "p99 ≤ 20 ms",
            ours["p99"] <= 20 and ours["errors"] == 0,
            notes,
        ),
        Row(
            "6b",
            "same load: throughput",
            f"{ours['rps']:.0f} req/s",
            f"{theirs['rps']:.0f} req/s (moto server)",
            f"{throughput:.2f}×",
            "≥ moto's",
            throughput >= 1.0,
        ),
        Row(
            "m2",
            f"server peak memory with {count:,} stored jobs, after the load",
            f"{rss / 1024:.0f} MiB",
            "—",
            "—",
            "report only",
            None,
        ),
    ]

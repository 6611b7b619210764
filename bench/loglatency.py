"""Benchmark 8: a line printed in the container → returned by GetLogEvents, as a client polling
the Logs API sees it (latency = time of receipt minus the line's timestamp)."""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

from bench.common import Row, busybox_image, noop_request, percentile, trainforge_server

LINES = 200
SCRIPT = f'i=0; while [ $i -lt {LINES} ]; do echo "line $i"; i=$((i+1)); usleep 50000; done'


def log_latency() -> Row:
    image = busybox_image()
    with tempfile.TemporaryDirectory(prefix="tf-loglat-") as out, trainforge_server() as server:
        sm, logs = server.client("sagemaker"), server.client("logs")
        name = f"loglat-{uuid.uuid4().hex[:8]}"
        request = noop_request(name, image, Path(out))
        request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["/bin/sh", "-c", SCRIPT]
        sm.create_training_job(**request)
        group = "/aws/sagemaker/TrainingJobs"
        stream = None
        while stream is None:
            try:
                found = logs.describe_log_streams(
                    logGroupName=group, logStreamNamePrefix=name + "/"
                )["logStreams"]
                stream = found[0]["logStreamName"] if found else None
            except logs.exceptions.ResourceNotFoundException:
                pass
            time.sleep(0.01)
        delays: list[float] = []
        token = None
        deadline = time.monotonic() + 120
        while len(delays) < LINES and time.monotonic() < deadline:
            kwargs = {"nextToken": token} if token else {}
            page = logs.get_log_events(
                logGroupName=group, logStreamName=stream, startFromHead=True, **kwargs
            )
            now_ms = time.time() * 1000
            delays += [
                (now_ms - e["timestamp"]) / 1000
                for e in page["events"]
                if e["message"].startswith("line ")
            ]
            token = page["nextForwardToken"]
            time.sleep(0.02)
    p50, p99 = percentile(delays, 50), percentile(delays, 99)
    return Row(
        "8",
        "a line printed in the container → returned by GetLogEvents",
        f"p99 {p99:.3f} s (p50 {p50:.3f} s)",
        "—",
        "—",
        "p99 ≤ 1 s",
        p99 <= 1.0 and len(delays) == LINES,
        [f"{len(delays)} of {LINES} lines seen, polling every 20 ms"],
    )

"""Benchmark 7: 200 no-op jobs submitted at once to a running server, against the same
containers run back to back by `docker run --rm` on the same number of slots. Reports the
scheduling overhead per job and the server's peak memory."""

from __future__ import annotations

import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.common import Row, busybox_image, measure, noop_request, trainforge_server

SLOTS = 1  # ml.m5.large takes 2 vCPUs; this 2-CPU machine runs one at a time


def burst(count: int) -> list[Row]:
    image = busybox_image()
    with (
        tempfile.TemporaryDirectory(prefix="tf-burst-") as out,
        trainforge_server(TRAINFORGE_CAPACITY_CPUS=str(2 * SLOTS)) as server,
    ):
        sm = server.client("sagemaker")
        names = [f"burst-{uuid.uuid4().hex[:8]}-{i}" for i in range(count)]
        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda n: sm.create_training_job(**noop_request(n, image, Path(out))), names
                )
            )
        submitted = time.perf_counter() - started
        pending = set(names)
        while pending:
            page = sm.list_training_jobs(
                NameContains="burst-", StatusEquals="Completed", MaxResults=100
            )
            done = {s["TrainingJobName"] for s in page["TrainingJobSummaries"]}
            for summary in sm.get_paginator("list_training_jobs").paginate(NameContains="burst-"):
                for s in summary["TrainingJobSummaries"]:
                    if s["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
                        done.add(s["TrainingJobName"])
            pending -= done
            time.sleep(0.2)
        ours = time.perf_counter() - started
        failed = [
            n
            for n in names
            if sm.describe_training_job(TrainingJobName=n)["TrainingJobStatus"] != "Completed"
        ]
        rss = server.peak_rss_kib()

    def back_to_back(jobs: int) -> None:
        for _ in range(jobs):
            measure(["docker", "run", "--rm", image, "true"])

    started = time.perf_counter()
    with ThreadPoolExecutor(SLOTS) as pool:
        list(pool.map(back_to_back, [count // SLOTS] * SLOTS))
    theirs = time.perf_counter() - started
    overhead = (ours - theirs) / count
    notes = [
        f"{count} CreateTrainingJob calls took {submitted:.1f} s; all done after {ours:.1f} s; {SLOTS} slot(s)"
    ]
    if failed:
        notes.append(f"{len(failed)} jobs did not complete")
    return [
        Row(
            "7a",
            f"{count} no-op jobs submitted at once: scheduling overhead per job",
            f"{overhead * 1000:.0f} ms/job ({ours:.1f} s in all)",
            f"{theirs:.1f} s (docker run back to back)",
            f"{ours / theirs:.2f}×",
            "≤ 0.1 s per job",
            overhead <= 0.1 and not failed,
            notes,
        ),
        Row(
            "7b",
            f"server peak memory during the {count}-job burst",
            f"{rss / 1024:.0f} MiB",
            "—",
            "—",
            "≤ 200 MB",
            rss * 1024 <= 200e6,
        ),
    ]

"""Benchmarks 9 and 10, on a real 3-node Swarm on this machine (tests/cluster.py): a 3-host no-op
job, CreateTrainingJob → Completed through a server with the Swarm engine, against a bare
`docker service create` of the same three tasks (one per node, on an overlay network) run to
their exit and removed; and the bytes that pass through the server process while 1 GiB of a
FullyReplicated channel is staged to the three nodes (the data must go between S3 and the nodes)."""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from tests.server_support import wait_for_job
from tests.support import channel, job_request
from tests.swarm_support import SwarmSetup, swarm_setup

from bench.common import AWS_ENV, Row, alternate, busybox_image, fmt_seconds, median

_MiB = 1 << 20


def _bare_service_run(setup: SwarmSetup, image: str) -> float:
    """Three tasks, one per node, on an overlay network: created, run to exit, removed."""
    manager = setup.cluster.manager
    name = f"bare-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    manager.docker("network", "create", "-d", "overlay", name)
    manager.docker(
        "service", "create", "-d", "--name", name, "--replicas", "3",
        "--replicas-max-per-node", "1", "--restart-condition", "none",
        "--network", name, "--endpoint-mode", "dnsrr", image, "true",
    )  # fmt: skip
    while True:
        states = manager.docker("service", "ps", name, "--format", "{{.CurrentState}}")
        if states.count("Complete") == 3:
            break
        time.sleep(0.05)
    manager.docker("service", "rm", name)
    while manager.docker("ps", "-aq", "--filter", f"label=com.docker.swarm.service.name={name}"):
        time.sleep(0.05)
    manager.docker("network", "rm", name)
    return time.perf_counter() - start


def _io_bytes(pid: int) -> int:
    """Bytes the process read and wrote, sockets and files alike."""
    counters = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(counters["rchar"]) + int(counters["wchar"])


def swarm_rows(runs: int) -> list[Row]:
    # The S3 endpoint of the swarm is a moto of its own; this process and the server use it.
    os.environ.update(AWS_ENV)
    image = busybox_image()
    with swarm_setup([image]) as setup, tempfile.TemporaryDirectory(prefix="tf-swarm-") as tmp:
        s3 = setup.s3()
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        server = setup.server(Path(tmp))
        try:
            sm = server.client("sagemaker")

            def noop_job() -> float:
                request = job_request(image, f"s3://{bucket}/out", entrypoint=["/bin/true"])
                request["ResourceConfig"]["InstanceCount"] = 3
                start = time.perf_counter()
                sm.create_training_job(**request)
                done = wait_for_job(sm, request["TrainingJobName"], timeout=300)
                assert done["TrainingJobStatus"] == "Completed", done
                return time.perf_counter() - start

            ours, bare = alternate(noop_job, lambda: _bare_service_run(setup, image), runs)
            ratio = median(ours) / median(bare)
            rows = [
                Row(
                    "9",
                    "3-host no-op job on a 3-node swarm, CreateTrainingJob → Completed",
                    fmt_seconds(median(ours)),
                    f"{fmt_seconds(median(bare))} (docker service create, 3 tasks, run, rm)",
                    f"{ratio:.2f}×",
                    "≤ 2×",
                    ratio <= 2.0,
                )
            ]

            # 1 GiB in 16 objects of 64 MiB, FullyReplicated to three hosts.
            part = b"\0" * (64 * _MiB)
            for i in range(16):
                s3.put_object(Bucket=bucket, Key=f"gib/part-{i:02d}", Body=part)
            request = job_request(
                image,
                f"s3://{bucket}/out",
                channels=[channel("train", f"s3://{bucket}/gib/")],
                entrypoint=["/bin/sh", "-c"],
                arguments=["du -sk /opt/ml/input/data/train"],
            )
            request["ResourceConfig"]["InstanceCount"] = 3
            before = _io_bytes(server.proc.pid)  # type: ignore[union-attr]
            start = time.perf_counter()
            sm.create_training_job(**request)
            done = wait_for_job(sm, request["TrainingJobName"], timeout=900)
            took = time.perf_counter() - start
            through = _io_bytes(server.proc.pid) - before  # type: ignore[union-attr]
            assert done["TrainingJobStatus"] == "Completed", json.dumps(done, default=str)
            share = through / (1024 * _MiB)
            rows.append(
                Row(
                    "10",
                    "1 GiB FullyReplicated to 3 nodes: bytes through the server process",
                    f"{through / _MiB:.1f} MiB ({took:.1f} s for the job)",
                    "1024 MiB of data (3072 MiB staged)",
                    f"{share * 100:.2f} %",
                    "≤ 1 %",
                    share <= 0.01,
                )
            )
            return rows
        finally:
            server.stop()

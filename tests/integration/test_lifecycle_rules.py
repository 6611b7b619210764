"""Issue 8, part 1, with real containers and a real S3 endpoint: what falls out of one job
lifecycle. A stop or MaxRuntimeInSeconds while inputs download ends the job Stopped /
MaxRuntimeExceeded; FailureReason comes from the host that failed first; `trainforge run` never
takes a GPU that a server's job on the same home holds; each instance group gets its own
instance type's limits."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    channel,
    job_request,
    run_job,
    script_job,
    start_trainforge,
    trainforge,
    write_request,
)
from trainforge.domain.allocation import Allocation, HostAllocation
from trainforge.domain.records import QueueState
from trainforge.service.training_jobs import TrainingJobService
from trainforge.store.db import Database
from trainforge.store.jobs import JobStore

pytestmark = pytest.mark.docker

_MiB = 1 << 20


def _big_channel(s3: Any, bucket: str, copies: int = 8) -> dict[str, Any]:
    """A channel of ``copies`` times 64 MiB: seconds to download from the test endpoint."""
    s3.put_object(Bucket=bucket, Key="big/part-0", Body=b"\0" * (64 * _MiB))
    for i in range(1, copies):
        s3.copy_object(
            Bucket=bucket, Key=f"big/part-{i}", CopySource={"Bucket": bucket, "Key": "big/part-0"}
        )
    return channel("train", f"s3://{bucket}/big/")


def _statuses(describe: dict[str, Any]) -> list[str]:
    return [t["Status"] for t in describe["SecondaryStatusTransitions"]]


def _describe(home: Path, name: str) -> dict[str, Any]:
    proc = trainforge(home, "describe", name)
    return dict(json.loads(proc.stdout)) if proc.returncode == 0 else {}


def _wait_for(home: Path, name: str, secondary: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _describe(home, name).get("SecondaryStatus") == secondary:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {secondary}")


def test_stop_while_inputs_download_ends_the_job_stopped(
    images: dict[str, str], home: Path, s3: Any, bucket: str
) -> None:
    request = script_job(
        images["busybox"], home, "echo never\n", channels=[_big_channel(s3, bucket)]
    )
    name = str(request["TrainingJobName"])
    path = write_request(home, request)
    run = start_trainforge(home, "run", "--cli-input-json", f"file://{path}")
    try:
        _wait_for(home, name, "Downloading")
        assert trainforge(home, "stop", name).returncode == 0
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    describe = json.loads(out)
    assert run.returncode == 3, err
    assert describe["TrainingJobStatus"] == "Stopped"
    assert describe["SecondaryStatus"] == "Stopped"
    assert "FailureReason" not in describe
    assert _statuses(describe) == ["Starting", "Downloading", "Stopping", "Stopped"]


def test_max_runtime_while_inputs_download_ends_max_runtime_exceeded(
    images: dict[str, str], home: Path, s3: Any, bucket: str
) -> None:
    request = script_job(
        images["busybox"],
        home,
        "echo never\n",
        channels=[_big_channel(s3, bucket)],
        StoppingCondition={"MaxRuntimeInSeconds": 1},
    )
    result = run_job(home, request)
    assert result.returncode == 3, result.stderr
    assert result.describe["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert "FailureReason" not in result.describe
    assert "Training" not in _statuses(result.describe)


FIRST_FAILS = """
if [ "$(hostname)" = algo-2 ]; then
    sleep 0.5
    echo "ValueError: boom" > /opt/ml/output/failure
    exit 1
fi
trap 'echo "stopped by a peer" > /opt/ml/output/failure; exit 143' TERM
while true; do sleep 0.1; done
"""


def test_failure_reason_comes_from_the_host_that_failed_first(
    images: dict[str, str], home: Path
) -> None:
    request = script_job(images["busybox"], home, FIRST_FAILS)
    request["ResourceConfig"]["InstanceCount"] = 2
    result = run_job(home, request)
    assert result.returncode == 1, result.stderr
    assert result.describe["FailureReason"] == "AlgorithmError: ValueError: boom, exit code: 1"


def test_instance_groups_get_their_own_instance_types_limits(
    images: dict[str, str], home: Path
) -> None:
    request = script_job(images["busybox"], home, "echo ok\n")
    request["ResourceConfig"] = {
        "InstanceGroups": [
            {"InstanceGroupName": "small", "InstanceType": "ml.m5.large", "InstanceCount": 1},
            {"InstanceGroupName": "large", "InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        ],
        "VolumeSizeInGB": 1,
    }
    name = str(request["TrainingJobName"])
    result = run_job(home, request, TRAINFORGE_KEEP_CONTAINERS="true")
    assert result.status == "Completed", result.stderr
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=trainforge.job={name}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    memory = {}
    for info in json.loads(
        subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True).stdout
    ):
        host = info["Config"]["Labels"]["trainforge.host"]
        memory[host] = info["HostConfig"]["Memory"]
        assert info["HostConfig"]["ShmSize"] == memory[host] // 2
    assert memory == {"algo-1": 8192 * _MiB, "algo-2": 16384 * _MiB}


def test_trainforge_run_never_takes_a_gpu_a_servers_job_holds(
    images: dict[str, str], home: Path
) -> None:
    # A server on this home runs a GPU job: its claim holds device 0 (written as the server's
    # lifecycle writes it; no GPU container can run on this machine).
    db = Database(home / "trainforge.db")
    jobs = JobStore(db)
    service = TrainingJobService(jobs, "us-east-1", "000000000000")
    held = job_request(images["busybox"], f"file://{home}/out", name="server-gpu-job")
    held["ResourceConfig"]["InstanceType"] = "ml.g5.xlarge"
    service.create_training_job(held)
    server_allocation = Allocation(
        (HostAllocation("algo-1", "ml.g5.xlarge", "local", 4.0, 16384, ("0",)),)
    )
    assert jobs.allocate(
        "server-gpu-job", "server:elsewhere:1:1", 600.0, lambda in_use: server_allocation, True
    )
    request = script_job(images["busybox"], home, "echo gpu job\n")
    request["ResourceConfig"]["InstanceType"] = "ml.g5.xlarge"
    name = str(request["TrainingJobName"])
    path = write_request(home, request)
    run = start_trainforge(
        home, "run", "--cli-input-json", f"file://{path}", TRAINFORGE_CAPACITY_GPUS="1"
    )
    try:
        _wait_for(home, name, "Pending")
        time.sleep(1.5)
        assert _describe(home, name)["SecondaryStatus"] == "Pending"
        waiting = jobs.schedule(name)
        assert waiting is not None
        assert (waiting.queue_state, waiting.allocation) == (QueueState.CLAIMED, None)
        # The server's job ends: the GPU is free, and `trainforge run` takes it.
        jobs.release("server-gpu-job", "server:elsewhere:1:1")
        run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    schedule = jobs.schedule(name)
    assert schedule is not None and schedule.allocation is not None
    assert schedule.allocation.hosts[0].gpu_ids == ("0",)
    db.close()

"""Issue 3, point 4: the queue respects the machine. Jobs wait until their instance type's
resources are free, run with those resources as container limits, are capped (with a warning)
when larger than the machine, and with strict admission a job that can never fit is refused with
SageMaker's ResourceLimitExceeded text."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.server_support import start_server, wait_for_job
from tests.support import job_request

pytestmark = pytest.mark.docker


def _inspect(job: str) -> dict[str, object]:
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=trainforge.job={job}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(ids) == 1, ids
    return dict(
        json.loads(
            subprocess.run(["docker", "inspect", ids[0]], capture_output=True, text=True).stdout
        )[0]
    )


def test_jobs_wait_for_capacity_and_get_their_limits(
    images: dict[str, str], home: Path, tmp_path: Path
) -> None:
    # A 4-CPU, 20 GiB machine: two ml.m5.large (2 vCPU, 8 GiB) fit, a third waits.
    with start_server(
        home,
        TRAINFORGE_CAPACITY_CPUS="4",
        TRAINFORGE_CAPACITY_MEMORY_MIB=str(20 * 1024),
        TRAINFORGE_KEEP_CONTAINERS="true",
    ) as server:
        sm = server.client("sagemaker")
        names = []
        for _ in range(3):
            request = job_request(
                images["busybox"], f"file://{tmp_path}", entrypoint=["/bin/sleep", "3"]
            )
            sm.create_training_job(**request)
            names.append(request["TrainingJobName"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [sm.describe_training_job(TrainingJobName=n)["SecondaryStatus"] for n in names]
            if states[:2] == ["Training", "Training"]:
                break
            time.sleep(0.1)
        third = sm.describe_training_job(TrainingJobName=names[2])
        assert states[:2] == ["Training", "Training"]
        assert third["SecondaryStatus"] == "Pending"
        assert (
            third["SecondaryStatusTransitions"][-1]["StatusMessage"]
            == "Training job waiting for capacity"
        )
        finished = [wait_for_job(sm, n) for n in names]
        assert [d["TrainingJobStatus"] for d in finished] == ["Completed"] * 3
        # The third started only after one of the first two had ended.
        first_end = min(d["TrainingEndTime"] for d in finished[:2])
        assert finished[2]["TrainingStartTime"] >= first_end - __import__("datetime").timedelta(
            seconds=0.5
        )
        assert [t["Status"] for t in finished[2]["SecondaryStatusTransitions"]][:3] == [
            "Starting",
            "Pending",
            "Starting",
        ]
        host_config = _inspect(names[0])["HostConfig"]
        assert host_config["NanoCpus"] == 2 * 10**9  # type: ignore[index]
        assert host_config["Memory"] == 8 * 1024**3  # type: ignore[index]
        assert host_config["ShmSize"] == 4 * 1024**3  # type: ignore[index]


def test_a_job_larger_than_the_machine_runs_capped_with_a_warning(
    images: dict[str, str], home: Path, tmp_path: Path
) -> None:
    with start_server(
        home,
        TRAINFORGE_CAPACITY_CPUS="2",
        TRAINFORGE_CAPACITY_MEMORY_MIB=str(4 * 1024),
        TRAINFORGE_KEEP_CONTAINERS="true",
    ) as server:
        sm = server.client("sagemaker")
        request = job_request(images["argv"], f"file://{tmp_path}")
        request["ResourceConfig"]["InstanceType"] = "ml.p4d.24xlarge"
        sm.create_training_job(**request)
        name = request["TrainingJobName"]
        assert wait_for_job(sm, name)["TrainingJobStatus"] == "Completed"
        logs = server.client("logs")
        stream = logs.describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name + "/"
        )["logStreams"][0]["logStreamName"]
        messages = [
            e["message"]
            for e in logs.get_log_events(
                logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream, startFromHead=True
            )["events"]
        ]
        assert messages[0].startswith(
            "[trainforge] WARNING: ml.p4d.24xlarge has 96 vCPUs, 1152 GiB and 8 GPUs per host"
        )
        assert "so each container runs with at most 2 CPUs, 4096 MiB and 0 GPUs" in messages[0]
        host_config = _inspect(name)["HostConfig"]
        assert host_config["Memory"] == 4 * 1024**3  # type: ignore[index]


def test_strict_admission_refuses_what_can_never_fit(
    images: dict[str, str], home: Path, tmp_path: Path
) -> None:
    with start_server(
        home,
        TRAINFORGE_STRICT_ADMISSION="true",
        TRAINFORGE_CAPACITY_CPUS="8",
        TRAINFORGE_CAPACITY_MEMORY_MIB=str(32 * 1024),
        TRAINFORGE_CAPACITY_GPUS="0",
    ) as server:
        sm = server.client("sagemaker")
        request = job_request(images["argv"], f"file://{tmp_path}")
        request["ResourceConfig"]["InstanceType"] = "ml.p3.2xlarge"
        with pytest.raises(ClientError) as info:
            sm.create_training_job(**request)
        error = info.value.response["Error"]
        assert error["Code"] == "ResourceLimitExceeded"
        assert error["Message"] == (
            "The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances, "
            "with current utilization of 0 Instances and a request delta of 1 Instances. Please use "
            "AWS Service Quotas to request an increase for this quota."
        )
        with pytest.raises(ClientError):
            sm.describe_training_job(TrainingJobName=request["TrainingJobName"])
        fitting = job_request(images["argv"], f"file://{tmp_path}")
        fitting["ResourceConfig"]["InstanceType"] = "ml.m5.xlarge"
        sm.create_training_job(**fitting)
        assert wait_for_job(sm, fitting["TrainingJobName"])["TrainingJobStatus"] == "Completed"


def test_a_waiting_job_can_be_stopped_behind_one_that_cannot_start(
    images: dict[str, str], home: Path, tmp_path: Path
) -> None:
    with start_server(
        home, TRAINFORGE_CAPACITY_CPUS="2", TRAINFORGE_CAPACITY_MEMORY_MIB=str(16 * 1024)
    ) as server:
        sm = server.client("sagemaker")
        running = job_request(
            images["busybox"], f"file://{tmp_path}", entrypoint=["/bin/sleep", "30"]
        )
        head = job_request(images["argv"], f"file://{tmp_path}")
        behind = job_request(images["argv"], f"file://{tmp_path}")
        for request in (running, head, behind):
            sm.create_training_job(**request)
        wait_for_job(sm, running["TrainingJobName"], ("InProgress",))
        deadline = time.monotonic() + 20
        while (
            sm.describe_training_job(TrainingJobName=behind["TrainingJobName"])["SecondaryStatus"]
            != "Pending"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        sm.stop_training_job(TrainingJobName=behind["TrainingJobName"])
        stopped = wait_for_job(sm, behind["TrainingJobName"], timeout=10)
        assert (stopped["TrainingJobStatus"], stopped["SecondaryStatus"]) == ("Stopped", "Stopped")
        assert "TrainingStartTime" not in stopped
        assert (
            sm.describe_training_job(TrainingJobName=head["TrainingJobName"])["SecondaryStatus"]
            == "Pending"
        )
        sm.stop_training_job(TrainingJobName=running["TrainingJobName"])
        assert wait_for_job(sm, head["TrainingJobName"])["TrainingJobStatus"] == "Completed"

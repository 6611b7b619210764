"""UpdateTrainingJob through a real boto3 client against a running `trainforge serve`, and
`trainforge interrupt` reaching the server's own worker through the store they share: the
update shows in Describe, is refused as SageMaker refuses it, and a spot job the server runs is
interrupted, starts again and can still be stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server_support import RunningServer, start_server, wait_for_job
from tests.support import job_request, trainforge

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("update-home")
    running = start_server(home, TRAINFORGE_STOP_GRACE_SECONDS="1")
    yield running
    running.stop()


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def _wait_for(sm: Any, name: str, secondary: str, after: int = 0) -> dict[str, Any]:
    """Describe once the job's ``after``-th transition or a later one is ``secondary``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described: dict[str, Any] = sm.describe_training_job(TrainingJobName=name)
        seen = [t["Status"] for t in described["SecondaryStatusTransitions"]][after:]
        if secondary in seen and described["SecondaryStatus"] == secondary:
            return described
        time.sleep(0.1)
    raise AssertionError(f"{name} never reached {secondary}: {described}")


def test_update_while_training_then_interrupt_the_spot_job_the_server_runs(
    server: RunningServer, images: dict[str, str], tmp_path: Path
) -> None:
    sm = server.client("sagemaker")
    request = job_request(
        images["busybox"],
        f"file://{tmp_path}",
        entrypoint=["/bin/sleep", "120"],
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 300, "MaxWaitTimeInSeconds": 600},
        ProfilerConfig={"S3OutputPath": "s3://bucket/profiler", "DisableProfiler": False},
    )
    request["ResourceConfig"]["KeepAlivePeriodInSeconds"] = 60
    name = request["TrainingJobName"]
    arn = sm.create_training_job(**request)["TrainingJobArn"]
    with pytest.raises(ClientError) as info:
        sm.update_training_job(
            TrainingJobName="no-such-job", ResourceConfig={"KeepAlivePeriodInSeconds": 1}
        )
    assert _error(info) == ("ValidationException", "Requested resource not found.")
    _wait_for(sm, name, "Training")

    answer = sm.update_training_job(
        TrainingJobName=name,
        ProfilerConfig={"ProfilingIntervalInMilliseconds": 1000, "DisableProfiler": True},
        ResourceConfig={"KeepAlivePeriodInSeconds": 120},
        RemoteDebugConfig={"EnableRemoteDebug": True},
    )
    assert answer["TrainingJobArn"] == arn
    described = sm.describe_training_job(TrainingJobName=name)
    assert described["ProfilerConfig"] == {
        "S3OutputPath": "s3://bucket/profiler",
        "ProfilingIntervalInMilliseconds": 1000,
        "DisableProfiler": True,
    }
    assert described["ProfilingStatus"] == "Disabled"
    assert described["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 120
    assert described["RemoteDebugConfig"] == {"EnableRemoteDebug": True}
    with pytest.raises(ClientError) as info:
        sm.update_training_job(TrainingJobName=name)
    code, message = _error(info)
    assert code == "ValidationException" and "at least one of ProfilerConfig" in message

    # `trainforge interrupt` writes to the store the server reads: its worker carries it out.
    interrupt = trainforge(server.home, "interrupt", name)
    assert interrupt.returncode == 0, interrupt.stderr
    _wait_for(sm, name, "Training", after=3)
    sm.stop_training_job(TrainingJobName=name)
    ended = wait_for_job(sm, name)
    assert (ended["TrainingJobStatus"], ended["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [t["Status"] for t in ended["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Interrupted",
        "Starting",
        "Downloading",
        "Training",
        "Stopping",
        "Stopped",
    ]
    assert ended["BillableTimeInSeconds"] <= ended["TrainingTimeInSeconds"]

    # An ended job: no update, no RemoteDebugConfig outside Downloading/Training.
    with pytest.raises(ClientError) as info:
        sm.update_training_job(TrainingJobName=name, ResourceConfig={"KeepAlivePeriodInSeconds": 5})
    assert _error(info) == (
        "ValidationException",
        "The request was rejected because the training job is in status Stopped.",
    )

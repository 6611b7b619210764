"""Later attempts with real containers: ``trainforge interrupt`` on a managed spot job that
`trainforge run` runs (SIGTERM to the container as a reclaimed spot instance gets it, the
checkpoint it wrote uploaded to CheckpointConfig.S3Uri on the S3 endpoint, a fresh container
that finds it restored and completes, SageMaker's transitions, a log stream per attempt,
BillableTimeInSeconds), and a RetryStrategy retry after a platform fault provoked for real (the
container killed from outside the job)."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    env_for,
    log_messages,
    script_job,
    start_trainforge,
    trainforge,
    write_request,
)
from trainforge.cli.client import LocalClient
from trainforge.context import Context
from trainforge.settings import load_settings

pytestmark = pytest.mark.docker

# Resumes from its checkpoint when it finds one; otherwise writes one and trains until told to
# stop, saving on SIGTERM as a spot-aware algorithm does.
RESUMES = (
    "if [ -f /opt/ml/checkpoints/step.txt ]; then\n"
    '  echo "resumed from step $(cat /opt/ml/checkpoints/step.txt)"\n'
    "  echo trained > /opt/ml/model/model.txt\n"
    "  exit 0\n"
    "fi\n"
    "trap 'echo \"got SIGTERM\"; echo 8 > /opt/ml/checkpoints/step.txt; exit 0' TERM\n"
    "echo 7 > /opt/ml/checkpoints/step.txt\n"
    "echo ready\n"
    "while true; do sleep 0.1; done\n"
)


def _wait_for_line(home: Path, name: str, line: str, run: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and run.poll() is None:
        if line in trainforge(home, "logs", name).stdout.splitlines():
            return
        time.sleep(0.2)
    if run.poll() is None:
        run.kill()
    _, said = run.communicate(timeout=30)
    raise AssertionError(f"{name} never printed {line!r}; trainforge run said:\n{said}")


def _streams(home: Path, name: str) -> list[str]:
    client = LocalClient(Context(load_settings(env_for(home))))
    page = client.call(
        "logs",
        "DescribeLogStreams",
        {"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamNamePrefix": name + "/"},
    )
    return [s["logStreamName"] for s in page["logStreams"]]


def _running_seconds(describe: dict[str, Any]) -> int:
    """From TrainingStartTime to TrainingEndTime, less the Interrupted and Starting entries in
    between, in whole seconds, as the transitions Describe returned tell it."""

    def at(value: str) -> float:
        return dt.datetime.fromisoformat(value).timestamp()

    start, end = at(describe["TrainingStartTime"]), at(describe["TrainingEndTime"])
    waited = sum(
        at(t["EndTime"]) - at(t["StartTime"])
        for t in describe["SecondaryStatusTransitions"]
        if t["Status"] in ("Interrupted", "Starting") and at(t["StartTime"]) >= start
    )
    assert waited > 0
    return max(1, math.floor(end - start - waited))


def _run(home: Path, request: dict[str, Any]) -> subprocess.Popen[str]:
    path = write_request(home, request)
    return start_trainforge(home, "run", "--cli-input-json", f"file://{path}")


def test_an_interrupted_spot_job_resumes_from_its_checkpoint(
    images: dict[str, str], home: Path, bucket: str, s3: Any
) -> None:
    request = script_job(
        images["busybox"],
        home,
        RESUMES,
        EnableManagedSpotTraining=True,
        StoppingCondition={"MaxRuntimeInSeconds": 300, "MaxWaitTimeInSeconds": 600},
        CheckpointConfig={"S3Uri": f"s3://{bucket}/checkpoints/run-1"},
    )
    name = str(request["TrainingJobName"])
    run = _run(home, request)
    try:
        _wait_for_line(home, name, "ready", run)
        interrupt = trainforge(home, "interrupt", name)
        assert interrupt.returncode == 0, interrupt.stderr
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=30)
    assert run.returncode == 0, stderr
    describe = json.loads(stdout)
    assert (describe["TrainingJobStatus"], describe["SecondaryStatus"]) == (
        "Completed",
        "Completed",
    )
    transitions = describe["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == [
        "Starting",
        "Downloading",
        "Training",
        "Interrupted",
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert transitions[3]["StatusMessage"] == (
        "The job stopped because the managed spot training instances were interrupted."
    )
    # The time spent interrupted and starting again is not billed.
    assert describe["BillableTimeInSeconds"] == _running_seconds(describe)
    assert describe["BillableTimeInSeconds"] <= describe["TrainingTimeInSeconds"]
    assert describe["EnableManagedSpotTraining"] is True
    # The checkpoint saved during the grace period reached S3 and the second container.
    saved = s3.get_object(Bucket=bucket, Key="checkpoints/run-1/step.txt")
    assert saved["Body"].read() == b"8\n"
    messages = log_messages(home, name)
    assert "got SIGTERM" in " ".join(messages)
    assert any(m.endswith("resumed from step 8") for m in messages)
    assert len(_streams(home, name)) == 2
    # trainforge run shows the restart as it shows every status change.
    assert "[trainforge] Interrupted - The job stopped because" in stderr
    assert stderr.count("[trainforge] Training - ") == 2
    # An ended job cannot be interrupted; neither can one that does not exist.
    again = trainforge(home, "interrupt", name)
    assert again.returncode == 254
    assert "cannot be interrupted now: its status is Completed" in again.stderr
    missing = trainforge(home, "interrupt", name + "-nope")
    assert missing.returncode == 254
    assert "(ValidationException)" in missing.stderr
    assert "Requested resource not found." in missing.stderr


# Killed from outside on its first attempt (a platform fault); finds its checkpoint on the retry.
RETRIED = (
    "if [ -f /opt/ml/checkpoints/step.txt ]; then echo retried; exit 0; fi\n"
    "echo 1 > /opt/ml/checkpoints/step.txt\n"
    "echo ready\n"
    "while true; do sleep 0.1; done\n"
)


def test_a_job_killed_from_outside_is_retried_as_retry_strategy_allows(
    images: dict[str, str], home: Path
) -> None:
    request = script_job(
        images["busybox"],
        home,
        RETRIED,
        RetryStrategy={"MaximumRetryAttempts": 1},
        CheckpointConfig={"S3Uri": f"file://{home / 'checkpoints'}"},
    )
    name = str(request["TrainingJobName"])
    run = _run(home, request)
    try:
        _wait_for_line(home, name, "ready", run)
        ids = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"label=trainforge.job={name}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(ids) == 1
        subprocess.run(["docker", "kill", ids[0]], capture_output=True, check=True)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=30)
    assert run.returncode == 0, stderr
    describe = json.loads(stdout)
    assert describe["TrainingJobStatus"] == "Completed"
    statuses = [t["Status"] for t in describe["SecondaryStatusTransitions"]]
    assert statuses == [
        "Starting",
        "Downloading",
        "Training",
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert describe["SecondaryStatusTransitions"][3]["StatusMessage"] == (
        "Retrying the training job after an internal error (attempt 2 of 2)"
    )
    assert describe["RetryStrategy"] == {"MaximumRetryAttempts": 1}
    assert (
        "[trainforge] Starting - Retrying the training job after an internal error (attempt 2 of 2)"
        in stderr
    )
    assert any(m.endswith("retried") for m in log_messages(home, name))

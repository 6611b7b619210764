"""Issue 3: the real AWS CLI (awscli from PyPI) and the SageMaker Python SDK drive a running
`trainforge serve` unchanged, pointed at it with AWS_ENDPOINT_URL_SAGEMAKER and
AWS_ENDPOINT_URL_CLOUDWATCH_LOGS; and `trainforge list|describe|stop|logs` talk to the server
when TRAINFORGE_SERVER_URL names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server_support import RunningServer, start_server, wait_for_job
from tests.support import code_channel, job_request, trainforge, unique_name

pytestmark = pytest.mark.docker
AWS = str(Path(sys.executable).parent / "aws")
# awscli v1 (the PyPI package) exits 255 when the service answers an error; v2 exits 254.
AWS_CLI_SERVICE_ERROR = 255


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("cli-home")
    running = start_server(home, TRAINFORGE_STOP_GRACE_SECONDS="2")
    yield running
    running.stop()


def aws(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["AWS_ENDPOINT_URL_SAGEMAKER"] = server.url
    env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] = server.url
    return subprocess.run([AWS, *args], capture_output=True, text=True, env=env, timeout=60)


def aws_json(server: RunningServer, *args: str) -> Any:
    proc = aws(server, *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def _wait(
    server: RunningServer, name: str, statuses: tuple[str, ...] = ("Completed", "Failed", "Stopped")
) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        d = aws_json(server, "sagemaker", "describe-training-job", "--training-job-name", name)
        if d["TrainingJobStatus"] in statuses:
            return dict(d)
        time.sleep(0.3)
    raise AssertionError(f"{name} did not end")


def test_cli_shorthand_flags_then_describe_list_and_logs(
    server: RunningServer, images: dict[str, str], tmp_path: Path
) -> None:
    name = unique_name("cli")
    created = aws_json(
        server,
        "sagemaker",
        "create-training-job",
        "--training-job-name",
        name,
        "--role-arn",
        "arn:aws:iam::000000000000:role/cli",
        "--algorithm-specification",
        f"TrainingImage={images['argv']},TrainingInputMode=File",
        "--input-data-config",
        json.dumps([code_channel(tmp_path / "code", "echo unused\n")]),
        "--output-data-config",
        f"S3OutputPath=file://{tmp_path}/out",
        "--resource-config",
        "InstanceType=ml.m5.large,InstanceCount=1,VolumeSizeInGB=5",
        "--stopping-condition",
        "MaxRuntimeInSeconds=120",
    )
    assert created == {
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}"
    }
    described = _wait(server, name)
    assert described["TrainingJobStatus"] == "Completed"
    assert described["ResourceConfig"] == {
        "InstanceType": "ml.m5.large",
        "InstanceCount": 1,
        "VolumeSizeInGB": 5,
    }
    listed = aws_json(server, "sagemaker", "list-training-jobs", "--name-contains", name)
    assert [s["TrainingJobName"] for s in listed["TrainingJobSummaries"]] == [name]
    streams = aws_json(
        server,
        "logs",
        "describe-log-streams",
        "--log-group-name",
        "/aws/sagemaker/TrainingJobs",
        "--log-stream-name-prefix",
        f"{name}/",
    )
    stream = streams["logStreams"][0]["logStreamName"]
    events = aws_json(
        server,
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/sagemaker/TrainingJobs",
        "--log-stream-name",
        stream,
        "--start-from-head",
    )
    assert [e["message"] for e in events["events"]] == ["image-entrypoint train"]


def test_cli_input_json_and_stop(
    server: RunningServer, images: dict[str, str], tmp_path: Path
) -> None:
    request = job_request(
        images["busybox"], f"file://{tmp_path}/out", entrypoint=["/bin/sleep", "60"]
    )
    path = tmp_path / "job.json"
    path.write_text(json.dumps(request))
    aws_json(server, "sagemaker", "create-training-job", "--cli-input-json", f"file://{path}")
    name = request["TrainingJobName"]
    _wait(server, name, ("InProgress",))
    aws_json(server, "sagemaker", "stop-training-job", "--training-job-name", name)
    d = _wait(server, name)
    assert (d["TrainingJobStatus"], d["SecondaryStatus"]) == ("Stopped", "Stopped")
    again = aws(server, "sagemaker", "stop-training-job", "--training-job-name", name)
    assert again.returncode == AWS_CLI_SERVICE_ERROR
    assert "ValidationException" in again.stderr and "is in status Stopped" in again.stderr
    duplicate = aws(
        server, "sagemaker", "create-training-job", "--cli-input-json", f"file://{path}"
    )
    assert duplicate.returncode == AWS_CLI_SERVICE_ERROR
    assert (
        "An error occurred (ResourceInUse) when calling the CreateTrainingJob operation"
        in duplicate.stderr
    )


def test_cli_validation_error(
    server: RunningServer, images: dict[str, str], tmp_path: Path
) -> None:
    request = job_request(images["argv"], f"file://{tmp_path}", name="under_score")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(request))
    proc = aws(server, "sagemaker", "create-training-job", "--cli-input-json", f"file://{path}")
    assert proc.returncode == AWS_CLI_SERVICE_ERROR
    assert (
        "An error occurred (ValidationException) when calling the CreateTrainingJob operation: 1 "
        "validation error detected: Value 'under_score' at 'trainingJobName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    ) in proc.stderr


SDK_SCRIPT = """
import sys
import boto3
import sagemaker
session = sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"))
session.logs_for_job(sys.argv[1], wait=True, poll=1)
print("SDK-DONE")
"""


def test_sagemaker_sdk_streams_the_job_output_live(
    server: RunningServer, images: dict[str, str], tmp_path: Path
) -> None:
    # The job prints its lines, then waits (bounded) until the test has seen the SDK show the
    # first one: whatever the machine's load, "shown while it runs" is then a fact to check.
    script = (
        'for i in 1 2 3 4 5 6 7 8 9; do echo "epoch $i loss 0.$i"; sleep 0.2; done\n'
        "i=0; while [ ! -e /opt/ml/output/go ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done\n"
    )
    request = job_request(
        images["busybox"],
        f"file://{tmp_path}/out",
        channels=[code_channel(tmp_path / "code", script)],
        entrypoint=["/bin/sh"],
        arguments=["/opt/ml/input/data/code/train.sh"],
    )
    sm = server.client("sagemaker")
    sm.create_training_job(**request)
    env = dict(os.environ)
    env["AWS_ENDPOINT_URL_SAGEMAKER"] = server.url
    env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] = server.url
    env["PYTHONUNBUFFERED"] = "1"
    seen_while_running = False
    lines = []
    with subprocess.Popen(
        [sys.executable, "-c", SDK_SCRIPT, request["TrainingJobName"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "epoch 1 loss 0.1" in line:
                status = sm.describe_training_job(TrainingJobName=request["TrainingJobName"])[
                    "TrainingJobStatus"
                ]
                seen_while_running = status == "InProgress"
                name = request["TrainingJobName"]
                (server.home / "jobs" / name / "hosts" / "algo-1" / "output" / "go").touch()
        proc.wait(timeout=180)
    assert proc.returncode == 0, "\n".join(lines)
    output = "\n".join(lines)
    for i in range(1, 10):
        assert f"epoch {i} loss 0.{i}" in output
    assert "SDK-DONE" in output
    assert "Completed - Training job completed" in output
    assert seen_while_running, "the SDK showed the first line only after the job had ended"


def test_trainforge_cli_talks_to_the_server(
    server: RunningServer, images: dict[str, str], tmp_path: Path
) -> None:
    other_home = tmp_path / "client-only-home"
    other_home.mkdir()
    env = {"TRAINFORGE_SERVER_URL": server.url}
    sm = server.client("sagemaker")
    request = job_request(
        images["busybox"],
        f"file://{tmp_path}/out",
        entrypoint=["/bin/sh", "-c", "echo remote-line; sleep 60"],
    )
    sm.create_training_job(**request)
    name = request["TrainingJobName"]
    wait_for_job(sm, name, ("InProgress",))
    deadline = time.monotonic() + 30
    while (
        "remote-line" not in trainforge(other_home, "logs", name, **env).stdout
        and time.monotonic() < deadline
    ):
        time.sleep(0.3)
    assert trainforge(other_home, "logs", name, **env).stdout.splitlines() == ["remote-line"]
    listed = trainforge(other_home, "list", **env)
    assert name in listed.stdout
    assert trainforge(other_home, "stop", name, **env).returncode == 0
    assert wait_for_job(sm, name)["TrainingJobStatus"] == "Stopped"
    described = json.loads(trainforge(other_home, "describe", name, **env).stdout)
    assert described["SecondaryStatus"] == "Stopped"
    # The client home was never used: the commands went to the server.
    assert not (other_home / "trainforge.db").exists()

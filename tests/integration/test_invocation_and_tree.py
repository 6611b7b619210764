"""Issue 2, points 3 and 4: the four invocation cases of SageMaker, and the /opt/ml tree, config
files and environment a container sees. Real containers on the real Docker engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import channel, job_request, log_messages, run_job, script_job

pytestmark = pytest.mark.docker


@pytest.mark.parametrize(
    ("entrypoint", "arguments", "expected"),
    [
        (None, None, "image-entrypoint train"),
        (["/bin/echo", "custom"], None, "custom"),
        (None, ["arg-a", "arg-b"], "image-entrypoint arg-a arg-b"),
        (["/bin/echo", "custom"], ["arg-a", "arg-b"], "custom arg-a arg-b"),
    ],
    ids=["default-train", "entrypoint-only", "arguments-only", "both"],
)
def test_invocation_matches_docker_run(
    images: dict[str, str],
    home: Path,
    entrypoint: list[str] | None,
    arguments: list[str] | None,
    expected: str,
) -> None:
    request = job_request(
        images["argv"], f"file://{home / 'out'}", entrypoint=entrypoint, arguments=arguments
    )
    result = run_job(home, request)
    assert result.returncode == 0, result.stderr
    assert result.status == "Completed"
    assert log_messages(home, request["TrainingJobName"]) == [expected]
    assert expected in result.stderr.splitlines()


def test_train_on_path_runs_when_the_image_has_no_entrypoint(
    images: dict[str, str], home: Path
) -> None:
    code = home / "code"
    code.mkdir()
    (code / "train.sh").write_text('echo "hello from train.sh"\n')
    request = job_request(
        images["train-on-path"],
        f"file://{home / 'out'}",
        channels=[channel("code", f"file://{code}")],
    )
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    assert log_messages(home, request["TrainingJobName"]) == [
        "train invoked with: /usr/local/bin/train ",
        "hello from train.sh",
    ]


TREE_SCRIPT = r"""
set -e
for f in /opt/ml/input/config/*.json; do echo "CONFIG $(basename $f) $(cat $f)"; done
for d in /opt/ml/model /opt/ml/output /opt/ml/output/data /opt/ml/input/data/code /opt/ml/input/data/train /opt/ml/input/data/validation; do
  [ -d "$d" ] && echo "DIR $d"
done
echo "ENV TRAINING_JOB_NAME=$TRAINING_JOB_NAME"
echo "ENV TRAINING_JOB_ARN=$TRAINING_JOB_ARN"
echo "ENV AWS_REGION=$AWS_REGION AWS_DEFAULT_REGION=$AWS_DEFAULT_REGION"
echo "ENV MY_SETTING=$MY_SETTING"
echo "ENV AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-absent} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-absent}"
echo "HOSTNAME $(hostname)"
ls /opt/ml/input/data/train
"""


def _config(lines: list[str], name: str) -> object:
    prefix = f"CONFIG {name} "
    return json.loads(next(line for line in lines if line.startswith(prefix))[len(prefix) :])


def test_opt_ml_tree_config_files_and_environment(images: dict[str, str], home: Path) -> None:
    train = home / "train-data"
    train.mkdir()
    (train / "a.csv").write_text("1,2\n")
    validation = home / "validation-data"
    validation.mkdir()
    (validation / "v.csv").write_text("3,4\n")
    request = script_job(
        images["busybox"],
        home,
        TREE_SCRIPT,
        channels=[
            channel("train", f"file://{train}", ContentType="text/csv"),
            channel("validation", str(validation)),
        ],
        HyperParameters={"epochs": "3", "lr": "0.1"},
        Environment={"MY_SETTING": "value with spaces"},
    )
    request["ResourceConfig"]["InstanceType"] = "ml.c5.xlarge"
    name = request["TrainingJobName"]
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    lines = log_messages(home, name)

    assert _config(lines, "hyperparameters.json") == {"epochs": "3", "lr": "0.1"}
    assert _config(lines, "inputdataconfig.json") == {
        "code": {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
        "train": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
        "validation": {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
    }
    resource = _config(lines, "resourceconfig.json")
    assert resource == {
        "current_host": "algo-1",
        "current_instance_type": "ml.c5.xlarge",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1"],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": "ml.c5.xlarge",
                "hosts": ["algo-1"],
            }
        ],
        "network_interface_name": "eth0",
    }
    assert list(resource) == [  # type: ignore[arg-type]
        "current_host",
        "current_instance_type",
        "current_group_name",
        "hosts",
        "instance_groups",
        "network_interface_name",
    ]
    assert not any(line.startswith("CONFIG checkpointconfig.json") for line in lines)
    for directory in (
        "/opt/ml/model",
        "/opt/ml/output",
        "/opt/ml/output/data",
        "/opt/ml/input/data/train",
        "/opt/ml/input/data/validation",
    ):
        assert f"DIR {directory}" in lines
    arn = f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}"
    assert f"ENV TRAINING_JOB_NAME={name}" in lines
    assert f"ENV TRAINING_JOB_ARN={arn}" in lines
    assert result.describe["TrainingJobArn"] == arn
    assert "ENV AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1" in lines
    assert "ENV MY_SETTING=value with spaces" in lines
    # The caller's credentials are set in this environment, yet never reach the container.
    assert "ENV AWS_ACCESS_KEY_ID=absent AWS_SECRET_ACCESS_KEY=absent" in lines
    assert "HOSTNAME algo-1" in lines
    assert "a.csv" in lines


def test_credentials_reach_the_container_only_when_asked(
    images: dict[str, str], home: Path
) -> None:
    request = script_job(images["busybox"], home, 'echo "KEY=${AWS_ACCESS_KEY_ID:-absent}"\n')
    result = run_job(home, request, TRAINFORGE_PASS_AWS_CREDENTIALS="true")
    assert result.status == "Completed", result.stderr
    assert log_messages(home, request["TrainingJobName"]) == ["KEY=testing"]


def test_checkpoint_config_file_and_checkpoint_round_trip(
    images: dict[str, str], home: Path, bucket: str, s3: object
) -> None:
    s3.put_object(Bucket=bucket, Key="ckpt/epoch-1.ckpt", Body=b"previous")  # type: ignore[attr-defined]
    script = (
        "cat /opt/ml/input/config/checkpointconfig.json; echo\n"
        "cat /opt/ml/checkpoints/epoch-1.ckpt; echo\n"
        "echo new > /opt/ml/checkpoints/epoch-2.ckpt\n"
    )
    request = script_job(
        images["busybox"],
        home,
        script,
        CheckpointConfig={"S3Uri": f"s3://{bucket}/ckpt/"},
    )
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    lines = log_messages(home, request["TrainingJobName"])
    assert json.loads(lines[0]) == {
        "LocalPath": "/opt/ml/checkpoints",
        "S3Uri": f"s3://{bucket}/ckpt/",
    }
    assert lines[1] == "previous"
    body = s3.get_object(Bucket=bucket, Key="ckpt/epoch-2.ckpt")["Body"].read()  # type: ignore[attr-defined]
    assert body == b"new\n"
    assert result.describe["CheckpointConfig"] == {"S3Uri": f"s3://{bucket}/ckpt/"}


def test_two_hosts_get_their_own_tree_and_see_each_other(
    images: dict[str, str], home: Path
) -> None:
    script = (
        'echo "$(hostname) $(cat /opt/ml/input/config/resourceconfig.json)"\n'
        # Peers' names may not resolve at once (SageMaker's docs say: retry).
        "for h in algo-1 algo-2; do for i in $(seq 50); do\n"
        '  ping -c1 -W1 $h >/dev/null 2>&1 && echo "$(hostname) sees $h" && break; sleep 0.1\n'
        "done; done\n"
        "sleep 2\n"
        'echo "$(hostname)" > /opt/ml/model/$(hostname).txt\n'
    )
    request = script_job(images["busybox"], home, script)
    request["ResourceConfig"]["InstanceCount"] = 2
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    lines = [line.split(" | ", 1)[-1] for line in log_messages(home, request["TrainingJobName"])]
    configs = {}
    for line in lines:
        host, _, rest = line.partition(" ")
        if rest.startswith("{"):
            configs[host] = json.loads(rest)
    assert configs["algo-2"]["current_host"] == "algo-2"
    assert configs["algo-1"]["hosts"] == ["algo-1", "algo-2"]
    assert "algo-1 sees algo-2" in lines
    assert "algo-2 sees algo-1" in lines

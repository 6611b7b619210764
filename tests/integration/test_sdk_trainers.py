"""Issue 11, "Clients we must not lose": the SageMaker Python SDK's ways to train, each run as a
user runs it (its own interpreter; nothing set but the endpoint variables and, in the SDK's
defaults file, telemetry off) against a real `trainforge serve`, to Completed with the
container's log shown: v2's ``Estimator.fit``, v2's ``ModelTrainer.train``
(``sagemaker.modules.train``) and v3's ``ModelTrainer.train`` (``sagemaker.train``, in
.venv-sdk3), which checks the role through trainforge's IAM first. Each is given its default
bucket: to name one itself an SDK asks AWS's own STS endpoint, which it pins whatever
AWS_ENDPOINT_URL_STS says (docs/operations.md, "IAM and STS")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.sdk_support import SDK2_PYTHON, run_sdk_script, sdk_env
from tests.server_support import RunningServer, start_server, wait_for_job

pytestmark = pytest.mark.docker
# The account the server answers STS with, so the SDK's default bucket has a name we know.
ACCOUNT = "210987654321"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/SageMakerExecution"
# The line the argv test image prints: `train` was passed to the image's entrypoint.
TRAIN_LINE = "image-entrypoint train"

V2_ESTIMATOR = """
import sys
import sagemaker
from sagemaker.estimator import Estimator

image, role, bucket, data = sys.argv[1:5]
session = sagemaker.Session(default_bucket=bucket)
estimator = Estimator(
    image_uri=image,
    role=role,
    instance_count=1,
    instance_type="ml.m5.large",
    sagemaker_session=session,
    base_job_name="sdk2-estimator",
)
estimator.fit({"train": data}, wait=True, logs="All")
print("TRAINED", estimator.latest_training_job.name)
"""

V2_MODEL_TRAINER = """
import sys
from sagemaker.config import load_sagemaker_config
from sagemaker.modules import Session
from sagemaker.modules.configs import Compute, InputData
from sagemaker.modules.train import ModelTrainer

image, role, bucket, data = sys.argv[1:5]
session = Session(default_bucket=bucket)
# v2's telemetry reads its opt-out from session.sagemaker_config, which the Session v2's
# ModelTrainer requires does not have: without this it would reach for AWS.
session.sagemaker_config = load_sagemaker_config()
trainer = ModelTrainer(
    training_image=image,
    role=role,
    sagemaker_session=session,
    base_job_name="sdk2-trainer",
    compute=Compute(instance_type="ml.m5.large", instance_count=1),
)
trainer.train(
    input_data_config=[InputData(channel_name="train", data_source=data)], wait=True, logs=True
)
print("TRAINED", trainer._latest_training_job.training_job_name)
"""

V3_MODEL_TRAINER = """
import logging
import sys
from botocore.exceptions import ClientError
from sagemaker.core.helper.session_helper import Session
from sagemaker.train import ModelTrainer
from sagemaker.train.configs import Compute, InputData

# v3 shows the job's log through the logging module, at INFO.
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
image, role, refused_role, bucket, data = sys.argv[1:6]


def trainer(role, base_job_name):
    return ModelTrainer(
        training_image=image,
        role=role,
        sagemaker_session=Session(default_bucket=bucket),
        base_job_name=base_job_name,
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
    )


channels = [InputData(channel_name="train", data_source=data)]
try:
    trainer(refused_role, "sdk3-refused").train(input_data_config=channels, wait=True, logs=True)
except ClientError as error:
    print("REFUSED", error)
else:
    sys.exit("a role IAM refuses was accepted")
model_trainer = trainer(role, "sdk3-trainer")
model_trainer.train(input_data_config=channels, wait=True, logs=True)
print("TRAINED", model_trainer._latest_training_job.training_job_name)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("sdk-home")
    running = start_server(home, TRAINFORGE_ACCOUNT_ID=ACCOUNT)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture(scope="module")
def data(s3: Any) -> tuple[str, str]:
    """A bucket of the test's own with one training file in it: (bucket, channel URI)."""
    bucket = f"tf-sdk-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=b"1,2,3\n")
    return bucket, f"s3://{bucket}/train/"


def _trained(server: RunningServer, output: str) -> dict[str, Any]:
    """The job the script said it trained, described by the server. The SDK never reached for
    AWS on the way (its telemetry, an endpoint it pins): it would have said so in its output."""
    assert "amazonaws.com" not in output, output
    names = [line.split()[1] for line in output.splitlines() if line.startswith("TRAINED ")]
    assert len(names) == 1, output
    return wait_for_job(server.client("sagemaker"), names[0], timeout=10)


def _objects(s3: Any, bucket: str, prefix: str) -> list[str]:
    answer = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in answer.get("Contents", [])]


@pytest.mark.parametrize("script", [V2_ESTIMATOR, V2_MODEL_TRAINER], ids=["estimator", "trainer"])
def test_sdk_v2_trains_to_completed_with_logs(
    server: RunningServer,
    images: dict[str, str],
    data: tuple[str, str],
    s3: Any,
    tmp_path: Path,
    script: str,
) -> None:
    bucket, uri = data
    env = sdk_env(server.url)
    proc = run_sdk_script(
        SDK2_PYTHON, script, images["argv"], ROLE, bucket, uri, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout
    assert TRAIN_LINE in proc.stdout
    described = _trained(server, proc.stdout)
    assert described["TrainingJobStatus"] == "Completed"
    assert described["RoleArn"] == ROLE
    name = described["TrainingJobName"]
    assert described["ModelArtifacts"]["S3ModelArtifacts"].startswith(f"s3://{bucket}/")
    assert any(key.endswith(f"{name}/output/model.tar.gz") for key in _objects(s3, bucket, ""))


def test_sdk_v3_model_trainer_checks_the_role_and_trains_to_completed_with_logs(
    server: RunningServer,
    images: dict[str, str],
    data: tuple[str, str],
    s3: Any,
    sdk3_python: Path,
    tmp_path: Path,
) -> None:
    bucket, uri = data
    proc = run_sdk_script(
        sdk3_python,
        V3_MODEL_TRAINER,
        images["argv"],
        ROLE,
        f"arn:aws:iam::{ACCOUNT}:role/not a name",
        bucket,
        uri,
        env=sdk_env(server.url),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout
    # The role check went to trainforge's IAM: a name IAM's model refuses fails GetRole there,
    # and the SDK gives up before it creates a job.
    assert (
        "REFUSED An error occurred (ValidationError) when calling the GetRole operation"
        in proc.stdout
    )
    assert "at 'roleName' failed to satisfy constraint" in proc.stdout
    sm = server.client("sagemaker")
    assert sm.list_training_jobs(NameContains="sdk3-refused")["TrainingJobSummaries"] == []
    assert TRAIN_LINE in proc.stdout
    assert "Final Resource Status: [bold]Completed" in proc.stdout
    described = _trained(server, proc.stdout)
    assert (described["TrainingJobStatus"], described["RoleArn"]) == ("Completed", ROLE)
    name = described["TrainingJobName"]
    assert any(key.endswith(f"{name}/output/model.tar.gz") for key in _objects(s3, bucket, ""))

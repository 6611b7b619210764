"""Issue 12 (part A): a job's containers get its role's credentials through the credentials
endpoint (AssumeRole against moto's STS, the job's name as the session name), never as keys in
their environment, and the S3 endpoint trainforge uses; the SageMaker SDK's framework estimator
runs AWS's training toolkit to Completed with them, and SDK v3's ModelTrainer with SourceCode
runs its own drivers (sm_train.sh) to Completed the same way; one job's token never gets another
job's credentials and a job's token dies with it; an isolated job gets none of it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import _remove_containers_of, image_builder
from tests.credentials_support import ask
from tests.sdk_support import run_sdk_script, sdk_env
from tests.server_support import RunningServer, start_server
from tests.support import log_messages, run_job, script_job, unique_name

pytestmark = pytest.mark.docker
ROLE_A = "arn:aws:iam::000000000000:role/trainer-a"
ROLE_B = "arn:aws:iam::000000000000:role/trainer-b"


def _docker_env(container_ids: list[str]) -> list[str]:
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{json .Config.Env}}", *container_ids],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [item for line in out.splitlines() for item in json.loads(line)]


def _containers_of(job: str) -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=trainforge.job={job}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


# -- the SDK's framework estimator, the toolkit, the role's credentials ------------------------

TRAIN_PY = """
import argparse, os
import boto3

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
identity = boto3.client("sts").get_caller_identity()["Arn"]
print("identity", identity, flush=True)
boto3.client("s3").put_object(
    Bucket=os.environ["RESULT_BUCKET"], Key="from-script/" + os.environ["TRAINING_JOB_NAME"],
    Body=identity.encode())
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
    f.write(f"trained for {args.epochs} epochs")
print(f"script done after {args.epochs} epochs", flush=True)
"""

SDK_FIT = """
import json, sys
import boto3, sagemaker
from sagemaker.pytorch import PyTorch

image, source_dir, bucket, role, s3 = sys.argv[1:6]
session = sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"),
                            default_bucket=bucket)
estimator = PyTorch(entry_point="train.py", source_dir=source_dir, image_uri=image, role=role,
                    instance_count=1, instance_type="ml.m5.large", sagemaker_session=session,
                    hyperparameters={"epochs": 3}, output_path=f"s3://{bucket}/output",
                    environment={"RESULT_BUCKET": bucket, "AWS_ENDPOINT_URL_STS": s3})
estimator.fit(logs=True)
print("JOB", estimator.latest_training_job.name)
print("MODEL", estimator.model_data)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("creds-home")
    running = start_server(home, TRAINFORGE_KEEP_CONTAINERS="true")
    try:
        yield running
    finally:
        running.stop()
        _remove_containers_of(home)


def test_sdk_pytorch_estimator_runs_the_toolkit_with_the_roles_credentials(
    server: RunningServer, images: dict[str, str], s3_endpoint: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = unique_name("tf-sdk")
    s3.create_bucket(Bucket=bucket)
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(TRAIN_PY)
    env = dict(os.environ)
    env["AWS_ENDPOINT_URL_SAGEMAKER"] = server.url
    env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] = server.url
    role = "arn:aws:iam::000000000000:role/sdk-trainer"
    fit = subprocess.run(
        [sys.executable, "-c", SDK_FIT, images["sagemaker-toolkit"], str(source), bucket, role,
         s3_endpoint],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    output = fit.stdout + fit.stderr
    assert fit.returncode == 0, output
    job = next(line.split()[1] for line in fit.stdout.splitlines() if line.startswith("JOB "))
    # The toolkit fetched sourcedir.tar.gz itself, ran the entry point with the hyperparameters,
    # and the script's own boto3 found the role's credentials (AssumeRole, session = job name).
    assert "script done after 3 epochs" in output
    identity = f"arn:aws:sts::000000000000:assumed-role/sdk-trainer/{job}"
    assert f"identity {identity}" in output
    assert "Completed - Training job completed" in output
    written = s3.get_object(Bucket=bucket, Key=f"from-script/{job}")["Body"].read()
    assert written.decode() == identity
    model = s3.get_object(Bucket=bucket, Key=f"output/{job}/output/model.tar.gz")["Body"].read()
    path = tmp_path / "model.tar.gz"
    path.write_bytes(model)
    with tarfile.open(path) as tar:
        member = tar.extractfile("model.txt")
        assert member is not None
        assert member.read() == b"trained for 3 epochs"
    # No secret in the container's configuration, Describe or the server's log.
    container_env = _docker_env(_containers_of(job))
    names = {item.split("=", 1)[0] for item in container_env}
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" in names
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" in names
    assert f"AWS_ENDPOINT_URL_S3={s3_endpoint}" in container_env
    for secret in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                   "AWS_CONTAINER_AUTHORIZATION_TOKEN"):  # fmt: skip
        assert secret not in names
    assert "testing-secret" not in json.dumps(container_env)
    describe = server.client("sagemaker").describe_training_job(TrainingJobName=job)
    assert "SecretAccessKey" not in json.dumps(describe, default=str)
    assert not (server.home / "credentials" / job).exists(), "the job's token outlived it"


# -- SDK v3: ModelTrainer with SourceCode -----------------------------------------------------

# v3 runs no toolkit: it uploads the source dir as a `code` channel and its own drivers as an
# `sm_drivers` channel, and sets the entry command to `/bin/bash -c ".../sm_train.sh"`, which
# writes /opt/ml/input/sm_training.env from the config files and runs the entry script with the
# hyperparameters as arguments.
TRAIN_V3_PY = """
import argparse, os
import boto3

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
args = parser.parse_args()
with open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "data.csv")) as f:
    rows = f.read().split()
identity = boto3.client("sts").get_caller_identity()["Arn"]
s3 = boto3.client("s3")
bucket, key = os.environ["RESULT_BUCKET"], "from-v3-script/" + os.environ["TRAINING_JOB_NAME"]
s3.put_object(Bucket=bucket, Key=key, Body=identity.encode())
print("v3 read back", s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode(), flush=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
    f.write(f"v3 trained {args.epochs} epochs on {len(rows)} rows")
print(f"v3 script done: {args.epochs} epochs on {len(rows)} rows", flush=True)
"""

SDK3_TRAIN = """
import logging, sys
from sagemaker.core.helper.session_helper import Session
from sagemaker.train import ModelTrainer
from sagemaker.train.configs import Compute, InputData, SourceCode

# v3 shows the job's log through the logging module, at INFO.
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
image, source_dir, bucket, role, sts = sys.argv[1:6]
trainer = ModelTrainer(
    training_image=image,
    source_code=SourceCode(source_dir=source_dir, entry_script="train.py"),
    role=role,
    sagemaker_session=Session(default_bucket=bucket),
    compute=Compute(instance_type="ml.m5.large", instance_count=1),
    base_job_name="sdk3-source",
    hyperparameters={"epochs": 4},
    environment={"RESULT_BUCKET": bucket, "AWS_ENDPOINT_URL_STS": sts},
)
channels = [InputData(channel_name="train", data_source=f"s3://{bucket}/train/")]
trainer.train(input_data_config=channels, wait=True, logs=True)
print("JOB", trainer._latest_training_job.training_job_name)
"""


def test_sdk_v3_model_trainer_with_source_code_runs_with_the_roles_credentials(
    server: RunningServer,
    images: dict[str, str],
    s3_endpoint: str,
    sdk3_python: Path,
    tmp_path: Path,
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = unique_name("tf-sdk3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/data.csv", Body=b"1,2\n3,4\n5,6\n")
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(TRAIN_V3_PY)
    role = "arn:aws:iam::000000000000:role/sdk3-trainer"
    proc = run_sdk_script(
        sdk3_python, SDK3_TRAIN, images["sagemaker-toolkit"], str(source), bucket, role,
        s3_endpoint, env=sdk_env(server.url), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    job = next(line.split()[1] for line in proc.stdout.splitlines() if line.startswith("JOB "))
    # sm_train.sh ran the entry script from the code channel with the hyperparameter as an
    # argument and the channel's data; its boto3 had the role's credentials (session = job).
    assert "v3 script done: 4 epochs on 3 rows" in proc.stdout
    identity = f"arn:aws:sts::000000000000:assumed-role/sdk3-trainer/{job}"
    assert f"v3 read back {identity}" in proc.stdout
    assert "Final Resource Status: [bold]Completed" in proc.stdout
    described = server.client("sagemaker").describe_training_job(TrainingJobName=job)
    assert described["TrainingJobStatus"] == "Completed"
    model_uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_uri.startswith(f"s3://{bucket}/") and model_uri.endswith("/model.tar.gz")
    model = s3.get_object(Bucket=bucket, Key=model_uri.split("/", 3)[3])["Body"].read()
    path = tmp_path / "model.tar.gz"
    path.write_bytes(model)
    with tarfile.open(path) as tar:
        member = tar.extractfile("model.txt")
        assert member is not None
        assert member.read() == b"v3 trained 4 epochs on 3 rows"


# -- the endpoint itself: tokens per job, refresh ----------------------------------------------


def test_a_token_gets_its_own_jobs_credentials_only_and_they_are_refreshed(
    s3_endpoint: str, tmp_path: Path
) -> None:
    from trainforge.runtime.credentials_endpoint import CredentialsEndpoint
    from trainforge.runtime.role_credentials import CredentialsPolicy, credentials_for

    # 900 s is STS's shortest; refreshing when less than 899 s are left refreshes within 1 s.
    policy = CredentialsPolicy("us-east-1", duration_seconds=900, refresh_seconds=899)
    endpoint = CredentialsEndpoint("169.254.170.2", 0, tmp_path / "tokens")
    try:
        tokens = {}
        for job, role in (("job-a", ROLE_A), ("job-b", ROLE_B)):
            credentials, warnings = credentials_for(job, role, policy)
            assert credentials is not None and warnings == []
            token_file = endpoint.open(job, credentials)
            assert token_file.stat().st_mode & 0o777 == 0o444
            tokens[job] = token_file.read_text()
        assert tokens["job-a"] != tokens["job-b"]
        seen = {}
        for job, role_name in (("job-a", "trainer-a"), ("job-b", "trainer-b")):
            status, body = ask(endpoint.url, tokens[job])
            assert status == 200, body
            assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"}
            caller = boto3.client(
                "sts",
                endpoint_url=s3_endpoint,
                region_name="us-east-1",
                aws_access_key_id=body["AccessKeyId"],
                aws_secret_access_key=body["SecretAccessKey"],
                aws_session_token=body["Token"],
            ).get_caller_identity()
            assert caller["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{role_name}/{job}"
            seen[job] = body
        assert seen["job-a"]["AccessKeyId"] != seen["job-b"]["AccessKeyId"]
        # Neither no token nor a made-up one.
        assert ask(endpoint.url, "")[0] == 403
        assert ask(endpoint.url, tokens["job-a"] + "x")[0] == 403
        # Fresh credentials once the served ones are within the refresh margin.
        time.sleep(1.2)
        status, again = ask(endpoint.url, tokens["job-a"])
        assert status == 200
        assert again["AccessKeyId"] != seen["job-a"]["AccessKeyId"]
        assert again["Expiration"] >= seen["job-a"]["Expiration"]
        # A job that ended: its token is refused and its file is gone; the other job's works.
        endpoint.close("job-a")
        assert ask(endpoint.url, tokens["job-a"])[0] == 403
        assert not (tmp_path / "tokens" / "job-a").exists()
        assert ask(endpoint.url, tokens["job-b"])[0] == 200
    finally:
        endpoint.stop()


# -- trainforge run: what a container sees, isolated or not ------------------------------------

FETCH = (
    'wget -q -O - --header "Authorization: $(cat $AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)" '
    '"$AWS_CONTAINER_CREDENTIALS_FULL_URI" | grep -o \'"AccessKeyId": "[^"]*"\'\n'
)
SEE = (
    FETCH
    + """
echo "uri ${AWS_CONTAINER_CREDENTIALS_FULL_URI:-none}"
echo "s3 ${AWS_ENDPOINT_URL_S3:-none}"
echo "keys ${AWS_ACCESS_KEY_ID:-none} ${AWS_SECRET_ACCESS_KEY:-none}"
if [ -r "${AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE:-/nonexistent}" ]; then echo "token file readable"; fi
if [ -e /etc/trainforge ]; then echo "token mount present"; fi
"""
)


@pytest.mark.parametrize("isolated", [False, True])
def test_what_a_container_gets_and_an_isolated_one_does_not(
    images: dict[str, str], home: Path, s3_endpoint: str, isolated: bool
) -> None:
    request = script_job(images["busybox"], home, SEE)
    request["EnableNetworkIsolation"] = isolated
    result = run_job(home, request, TRAINFORGE_KEEP_CONTAINERS="true")
    assert result.status == "Completed", result.stderr
    lines = log_messages(home, request["TrainingJobName"])
    assert "keys none none" in lines, lines
    if isolated:
        assert "uri none" in lines and "s3 none" in lines, lines
        assert "token mount present" not in lines, lines
        return
    uri = next(line.split()[1] for line in lines if line.startswith("uri "))
    assert uri.startswith("http://169.254.170.2:"), lines
    assert f"s3 {s3_endpoint}" in lines, lines
    assert "token file readable" in lines, lines
    # Reached from the container through its gateway; moto's temporary keys start with ASIA.
    assert any(line.startswith('"AccessKeyId": "ASIA') for line in lines), lines
    assert not [m for m in lines if "WARNING" in m], lines
    names = {
        item.split("=", 1)[0] for item in _docker_env(_containers_of(request["TrainingJobName"]))
    }
    assert "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" in names
    assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


def test_a_loopback_s3_endpoint_is_reported_at_job_start(
    images: dict[str, str], home: Path
) -> None:
    request = script_job(images["busybox"], home, "echo ran\n")
    result = run_job(home, request, AWS_ENDPOINT_URL_S3="http://127.0.0.1:9")
    assert result.status == "Completed", result.stderr
    lines = log_messages(home, request["TrainingJobName"])
    assert lines[0] == (
        "[trainforge] WARNING: The S3 endpoint trainforge uses, http://127.0.0.1:9, is a loopback "
        "address: the job's containers cannot reach it (their loopback is their own), so S3 calls "
        "made inside the container will fail. Serve S3 on an address the containers can reach "
        "and point AWS_ENDPOINT_URL_S3 at it."
    ), lines
    assert "ran" in lines


def test_without_assume_role_the_mapping_then_the_servers_own_credentials(
    images: dict[str, str], home: Path
) -> None:
    script = 'echo "uri ${AWS_CONTAINER_CREDENTIALS_FULL_URI:-none}"\n' + FETCH
    mapped = script_job(images["busybox"], home, script, RoleArn=ROLE_A)
    result = run_job(
        home,
        mapped,
        TRAINFORGE_ASSUME_ROLE="false",
        TRAINFORGE_ROLE_CREDENTIALS=f"{ROLE_A}=keys:AKIAMAPPED:mapped-secret",
    )
    assert result.status == "Completed", result.stderr
    lines = log_messages(home, mapped["TrainingJobName"])
    assert not [m for m in lines if "WARNING" in m], lines
    assert '"AccessKeyId": "AKIAMAPPED"' in lines, lines
    unmapped = script_job(images["busybox"], home, script, RoleArn=ROLE_B)
    result = run_job(home, unmapped, TRAINFORGE_ASSUME_ROLE="false")
    assert result.status == "Completed", result.stderr
    lines = log_messages(home, unmapped["TrainingJobName"])
    warning = (
        "[trainforge] WARNING: The container gets trainforge's own AWS credentials, not those of "
        f"the role {ROLE_B}: AssumeRole is turned off (TRAINFORGE_ASSUME_ROLE=false). Map the "
        "role to a profile or keys in TRAINFORGE_ROLE_CREDENTIALS, or let trainforge's "
        "credentials assume it."
    )
    # Said once the container asks for them, before it has its answer.
    assert lines.count(warning) == 1, lines
    assert lines.index(warning) < lines.index('"AccessKeyId": "testing"'), lines
    assert any(line.startswith("uri http://169.254.170.2:") for line in lines), lines


def test_a_job_that_never_asks_finds_no_credentials(images: dict[str, str], home: Path) -> None:
    """Found when first asked for: a job whose containers never ask says nothing of them,
    even where they are not the role's."""
    request = script_job(images["busybox"], home, "echo ran\n", RoleArn=ROLE_B)
    result = run_job(home, request, TRAINFORGE_ASSUME_ROLE="false")
    assert result.status == "Completed", result.stderr
    assert log_messages(home, request["TrainingJobName"]) == ["ran"]


def test_the_docker_engine_holds_the_address_for_a_process_that_may_not(
    images: dict[str, str],
) -> None:
    from trainforge.engines.docker import DockerEngine

    agent = image_builder.agent_tag()
    # An address of its own (not the endpoint's, which other tests' servers use), removed after.
    address = f"169.254.253.{random.randint(1, 254)}"
    engine = DockerEngine("credentials-test")
    try:
        engine.hold_address(address, agent)
        shown = subprocess.run(
            ["ip", "-4", "addr", "show", "dev", "lo"], capture_output=True, text=True, check=True
        ).stdout
        assert f"inet {address}/32" in shown, shown
        engine.hold_address(address, agent)  # held already: not an error
    finally:
        subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], capture_output=True)

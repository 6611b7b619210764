"""Issue 3, points 5 and 6: fifty concurrent creates of one name (exactly one wins, the rest get
ResourceInUse); SigV4 verification against configured keys; the loopback default; no secret in
logs or in Describe output."""

from __future__ import annotations

import json
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import free_port
from tests.server_support import start_server, wait_for_job
from tests.support import TRAINFORGE, env_for, job_request

pytestmark = pytest.mark.docker

KEY_ID = "AKIDTRAINFORGETEST01"
SECRET = "s3cr3t-Value-That-Must-Never-Leak/+x"


def test_fifty_concurrent_creates_of_one_name(
    images: dict[str, str], home: Path, tmp_path: Path
) -> None:
    with start_server(home) as server:
        request = job_request(images["argv"], f"file://{tmp_path}", name="only-one-wins")

        def create(_: int) -> str:
            client = server.client("sagemaker")
            try:
                client.create_training_job(**request)
                return "created"
            except ClientError as exc:
                return str(exc.response["Error"]["Code"])

        with ThreadPoolExecutor(50) as pool:
            outcomes = list(pool.map(create, range(50)))
        assert outcomes.count("created") == 1
        assert outcomes.count("ResourceInUse") == 49
        sm = server.client("sagemaker")
        assert wait_for_job(sm, "only-one-wins")["TrainingJobStatus"] == "Completed"
        assert len(sm.list_training_jobs()["TrainingJobSummaries"]) == 1


def _client(url: str, service: str, key: str, secret: str, token: str | None = None) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1}),
    )


def test_sigv4_is_verified_against_the_configured_keys(
    images: dict[str, str], home: Path, tmp_path: Path
) -> None:
    with start_server(home, TRAINFORGE_ACCESS_KEYS=f"{KEY_ID}:{SECRET}") as server:
        good = _client(server.url, "sagemaker", KEY_ID, SECRET)
        request = job_request(
            images["argv"], f"file://{tmp_path}", Environment={"API_TOKEN": "user-visible"}
        )
        good.create_training_job(**request)
        described = wait_for_job(good, request["TrainingJobName"])
        assert described["TrainingJobStatus"] == "Completed"
        _client(server.url, "logs", KEY_ID, SECRET).describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs"
        )

        with pytest.raises(ClientError) as info:
            _client(server.url, "sagemaker", KEY_ID, "wrong-secret").list_training_jobs()
        assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        with pytest.raises(ClientError) as info:
            _client(server.url, "sagemaker", "AKIDUNKNOWN000000000", SECRET).list_training_jobs()
        assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
        status, headers, body = server.raw("SageMaker.ListTrainingJobs", "{}")
        assert status == 403
        assert body == {
            "__type": "MissingAuthenticationTokenException",
            "message": "Missing Authentication Token",
        }
        assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"

        # The secret appears nowhere: not in Describe, not in the server's log, not in the store.
        assert SECRET not in json.dumps(described, default=str)
        assert SECRET not in server.logs()
        assert SECRET.encode() not in (home / "trainforge.db").read_bytes()


def test_server_binds_loopback_by_default(home: Path) -> None:
    with start_server(home) as server:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", server.port)) == 0
        listening = subprocess.run(
            ["ss", "-ltnH", f"sport = :{server.port}"], capture_output=True, text=True
        ).stdout
        local_addresses = [line.split()[3] for line in listening.splitlines()]
        assert local_addresses == [f"127.0.0.1:{server.port}"]


def test_non_loopback_bind_without_keys_is_refused(home: Path) -> None:
    proc = subprocess.run(
        [TRAINFORGE, "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        env=env_for(home),
    )
    assert proc.returncode == 2
    assert "needs access keys for SigV4 verification" in proc.stderr

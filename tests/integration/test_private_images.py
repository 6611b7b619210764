"""Issue 12, images from private registries: a real registry with htpasswd authentication
(Debian's ``docker-registry``, on a loopback port, which Docker trusts over plain HTTP) holds a
locally built image; a job pulls it with the login trainforge is configured with, fails without
one with a ClientError that names the image and the registry's answer, and an ECR image URI is
pulled with the token moto's ECR GetAuthorizationToken issues.

An ECR host name cannot reach the test registry without editing the machine's /etc/hosts, so
the ECR test names the registry that serves the ECR repositories with
TRAINFORGE_ECR_REGISTRY_ENDPOINT (as for LocalStack's ECR or a mirror): the login still goes
through GetAuthorizationToken, and the registry accepts only the password that token carries.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import docker
import pytest

from tests.registry_support import push, untag
from tests.registry_support import registry as private_registry
from tests.support import log_messages, run_job, script_job

pytestmark = pytest.mark.docker

ECR_ACCOUNT = "123456789012"
ECR_HOST = f"{ECR_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
USER, PASSWORD = "tester", "pw-" + uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Registry:
    address: str  # host:port
    repository: str  # private/busybox, at the registry
    tag: str

    @property
    def image(self) -> str:
        return f"{self.address}/{self.repository}:{self.tag}"


def _ecr_password(endpoint: str) -> str:
    """The password moto's ECR hands out for the account: what a real login would present."""
    ecr = boto3.client("ecr", endpoint_url=endpoint, region_name="us-east-1")
    answer = ecr.get_authorization_token(registryIds=[ECR_ACCOUNT])
    token = base64.b64decode(answer["authorizationData"][0]["authorizationToken"]).decode()
    user, _, password = token.partition(":")
    assert user == "AWS"
    return password


@pytest.fixture(scope="module")
def registry(images: dict[str, str], s3_endpoint: str) -> Iterator[Registry]:
    logins = [(USER, PASSWORD), ("AWS", _ecr_password(s3_endpoint))]
    with private_registry("127.0.0.1", logins) as address:
        found = Registry(address, "private/busybox", uuid.uuid4().hex[:10])
        push(docker.APIClient(), images["busybox"], found.image, (USER, PASSWORD))
        yield found


@pytest.fixture
def absent(registry: Registry) -> Iterator[Registry]:
    """The pushed image is not on this machine: the job must pull it."""
    client = docker.APIClient()
    ecr_ref = f"{ECR_HOST}/{registry.repository}:{registry.tag}"
    untag(client, registry.image)
    untag(client, ecr_ref)
    yield registry
    untag(client, registry.image)
    untag(client, ecr_ref)


def _present(ref: str) -> bool:
    try:
        docker.APIClient().inspect_image(ref)
    except docker.errors.NotFound:
        return False
    return True


def test_a_configured_login_pulls_the_private_image(absent: Registry, home: Path) -> None:
    request = script_job(absent.image, home, "echo pulled-and-ran\n")
    result = run_job(home, request, TRAINFORGE_REGISTRY_AUTH=f"{absent.address}={USER}:{PASSWORD}")
    assert result.status == "Completed", result.describe.get("FailureReason") or result.stderr
    assert "pulled-and-ran" in log_messages(home, request["TrainingJobName"])
    assert _present(absent.image)


def test_without_a_login_the_job_fails_naming_the_image_and_the_answer(
    absent: Registry, home: Path
) -> None:
    request = script_job(absent.image, home, "echo never\n")
    result = run_job(home, request)
    assert result.status == "Failed"
    reason = result.describe["FailureReason"]
    assert reason.startswith(
        f"ClientError: The training image {absent.image} could not be pulled from "
        f"{absent.address}: "
    ), reason
    # The registry's answer, as the engine relays it.
    assert "no basic auth credentials" in reason, reason
    assert not _present(absent.image)


def test_a_wrong_password_fails_with_the_registry_answer(absent: Registry, home: Path) -> None:
    request = script_job(absent.image, home, "echo never\n")
    wrong = "bad-" + uuid.uuid4().hex[:8]
    result = run_job(home, request, TRAINFORGE_REGISTRY_AUTH=f"{absent.address}={USER}:{wrong}")
    assert result.status == "Failed"
    reason = result.describe["FailureReason"]
    assert reason.startswith(f"ClientError: The training image {absent.image} could not"), reason
    assert "unauthorized" in reason.lower(), reason
    # The password given is never part of what a user reads.
    assert wrong not in reason and wrong not in result.stderr


def test_an_ecr_image_is_pulled_with_the_ecr_login(
    absent: Registry, home: Path, s3_endpoint: str
) -> None:
    ecr_ref = f"{ECR_HOST}/{absent.repository}:{absent.tag}"
    request = script_job(ecr_ref, home, "echo ecr-image-ran\n")
    result = run_job(
        home,
        request,
        AWS_ENDPOINT_URL_ECR=s3_endpoint,
        TRAINFORGE_ECR_REGISTRY_ENDPOINT=absent.address,
    )
    assert result.status == "Completed", result.describe.get("FailureReason") or result.stderr
    assert "ecr-image-ran" in log_messages(home, request["TrainingJobName"])
    # The job ran the image under the name it was given.
    assert _present(ecr_ref)
    assert result.describe["AlgorithmSpecification"]["TrainingImage"] == ecr_ref

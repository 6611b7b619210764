"""Fixtures shared by every tier: the locally built images, a real S3 endpoint (moto's server,
S3 and STS, in a network namespace of the tests' own, one process for the whole session; with
``TRAINFORGE_TEST_S3=s3s``, s3s-fs in such a namespace instead, a second S3 implementation that
checks signatures), a fresh TRAINFORGE_HOME per test, and clean-up of the containers a test left
behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import s3s  # noqa: E402

import images as image_builder  # noqa: E402

TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port}")


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Tags of every image the tests use, built once and reused by tag."""
    return {
        "busybox": image_builder.busybox_tag(),
        "python": image_builder.python_tag(),
        **image_builder.test_tags(),
    }


S3_SERVERS = ("moto", "s3s")


def s3_server_kind() -> str:
    kind = os.environ.get("TRAINFORGE_TEST_S3", "moto")
    if kind not in S3_SERVERS:
        raise pytest.UsageError(f"TRAINFORGE_TEST_S3 must be one of {S3_SERVERS}, not {kind!r}")
    return kind


@pytest.fixture(scope="session")
def sdk3_python() -> Path:
    """The interpreter of .venv-sdk3, where the SageMaker SDK v3 is (tests/sdk_support.py). `make
    test` builds it; a run without it fails here saying how to build it."""
    from tests.sdk_support import SDK3_PYTHON, SDK3_READY

    if not SDK3_READY.exists():
        pytest.fail("the SageMaker SDK v3 environment is missing: run `make .venv-sdk3/.installed`")
    return SDK3_PYTHON


@pytest.fixture(scope="session")
def s3_endpoint(aws_environment: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server (S3 and STS) in a network namespace of the tests' own (tests/
    s3_namespace.py), where this machine and its containers both reach it, started by the first
    test that needs it; from then on AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_STS point at it
    (the processes the tests start inherit them). With ``TRAINFORGE_TEST_S3=s3s``, s3s-fs in such
    a namespace instead (S3 only: the tests of `make test-s3s` need no STS)."""
    if s3_server_kind() == "s3s":
        from tests.s3_namespace import s3_in_namespace

        data = tmp_path_factory.mktemp("s3s-data")

        def start(prefix: Sequence[str], host: str, port: int) -> subprocess.Popen[bytes]:
            return s3s.start(
                data,
                port,
                TEST_ENV["AWS_ACCESS_KEY_ID"],
                TEST_ENV["AWS_SECRET_ACCESS_KEY"],
                log=data.parent / "s3s-fs.log",
                host=host,
                prefix=prefix,
            )

        with s3_in_namespace(start) as endpoint, pytest.MonkeyPatch.context() as mp:
            mp.setenv("AWS_ENDPOINT_URL_S3", endpoint)
            yield endpoint
        return
    from tests.s3_namespace import moto_in_namespace

    with moto_in_namespace() as endpoint, pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        mp.setenv("AWS_ENDPOINT_URL_STS", endpoint)
        yield endpoint


@pytest.fixture(scope="session", autouse=True)
def aws_environment() -> Iterator[None]:
    """Standard AWS configuration; never a real account. Starts nothing."""
    with pytest.MonkeyPatch.context() as mp:
        for name in (
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_STS",
            "TRAINFORGE_SERVER_URL",
        ):
            mp.delenv(name, raising=False)
        for name, value in TEST_ENV.items():
            mp.setenv(name, value)
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The API and integration tiers run real jobs against a real S3 (and STS) endpoint; unit
    tests need none, and `pytest tests/unit` starts nothing. The endpoint comes first, before
    any module's server fixture, so every server started inherits it."""
    for item in items:
        if "unit" not in item.path.relative_to(ROOT).parts[:2]:
            names = getattr(item, "fixturenames", None)
            if names is not None and "s3_endpoint" not in names:
                names.insert(0, "s3_endpoint")


@pytest.fixture
def s3(s3_endpoint: str) -> object:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3: object) -> str:
    name = f"tf-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    path.mkdir()
    yield path
    _remove_containers_of(path)


def _remove_containers_of(home: Path) -> None:
    import hashlib

    label = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=trainforge.instance={label}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    nets = subprocess.run(
        ["docker", "network", "ls", "-q", "--filter", f"label=trainforge.instance={label}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if nets:
        subprocess.run(["docker", "network", "rm", *nets], capture_output=True)

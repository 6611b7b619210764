"""`trainforge doctor` against the real things it checks: the Docker engine (and one it cannot
reach), S3 (moto's server, one that refuses unknown access keys, one that is not there), a nearly
full filesystem (a tmpfs the test mounts), and a `trainforge serve` (and a port nobody answers).
The GPU branch needs GPUs: tests/unit/test_doctor.py covers it with a fake engine."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for_port
from tests.server_support import RunningServer
from tests.support import env_for, trainforge


def doctor(home: Path, *args: str, **env: str) -> tuple[int, dict[str, tuple[str, str]]]:
    """The exit status, and each line's state and detail by subject."""
    proc = trainforge(home, "doctor", *args, timeout=120, **env)
    lines: dict[str, tuple[str, str]] = {}
    for line in proc.stdout.splitlines()[1:-1]:
        state, rest = line.strip().split(None, 1)
        subject, _, detail = rest.partition("  ")
        lines[subject.strip()] = (state, detail.strip())
    assert proc.stdout.splitlines()[-1] in ("Ready.", "Ready. (1 warning)") or (
        "found." in proc.stdout.splitlines()[-1]
    ), proc.stdout + proc.stderr
    return proc.returncode, lines


def test_a_healthy_machine_is_ready(home: Path, bucket: str) -> None:
    version = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    code, lines = doctor(home, "--s3-uri", f"s3://{bucket}/data/")
    assert code == 0, lines
    assert lines["Docker engine"][0] == "ok" and lines["Docker engine"][1].startswith(version)
    assert lines["S3"] == (
        "ok",
        f"HeadBucket {bucket} at {os.environ['AWS_ENDPOINT_URL_S3']} as testing: "
        f"bucket {bucket} is there",
    )
    assert lines["Disk (home)"][0] == "ok" and str(home) in lines["Disk (home)"][1]
    assert lines["Disk (workspaces)"][0] == "ok"
    assert lines["Server"][0] == "--"


def test_an_unreachable_docker_engine_fails(home: Path) -> None:
    port = free_port()
    code, lines = doctor(home, DOCKER_HOST=f"tcp://127.0.0.1:{port}")
    assert code == 1
    state, detail = lines["Docker engine"]
    assert state == "FAIL"
    assert f"Cannot reach the Docker engine at tcp://127.0.0.1:{port}" in detail
    assert lines["S3"][0] == "ok"  # one failure hides no other check


def test_a_missing_bucket_fails(home: Path) -> None:
    code, lines = doctor(home, "--s3-uri", "s3://tf-no-such-bucket/data/")
    assert code == 1
    assert lines["S3"] == ("FAIL", "HeadBucket tf-no-such-bucket: NoSuchBucket (HTTP 404)")


@pytest.fixture(scope="module")
def strict_s3() -> Iterator[str]:
    """A second moto server that checks access keys (moto's IAM-backed authentication)."""
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_credentials_s3_refuses_fail(home: Path, strict_s3: str) -> None:
    code, lines = doctor(home, AWS_ENDPOINT_URL_S3=strict_s3, AWS_ACCESS_KEY_ID="AKIDUNKNOWN")
    assert code == 1
    state, detail = lines["S3"]
    assert state == "FAIL"
    assert detail.startswith("InvalidAccessKeyId: The AWS Access Key Id you provided does not")


def test_an_unreachable_s3_endpoint_fails(home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, lines = doctor(home, AWS_ENDPOINT_URL_S3=url)
    assert code == 1
    assert lines["S3"] == ("FAIL", f'Could not connect to the endpoint URL: "{url}/"')


def test_no_credentials_warn_and_fail_only_when_a_bucket_is_named(home: Path) -> None:
    env = env_for(home)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-m", "trainforge.cli.main", "doctor"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout
    assert "  warn  S3" in proc.stdout and "no AWS credentials found" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "trainforge.cli.main", "doctor", "--s3-uri", "s3://b/k"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "  FAIL  S3" in proc.stdout and "no AWS credentials found" in proc.stdout


def test_a_nearly_full_filesystem_fails(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)], check=True)
    try:
        home = mount / "home"
        home.mkdir()
        code, lines = doctor(home, "--min-free-gib", "0.01")  # 10.24 MiB
        assert code == 0 and lines["Disk (home)"][0] == "ok", lines
        with (mount / "filler").open("wb") as fh:
            fh.write(b"\0" * (26 << 20))
        code, lines = doctor(home, "--min-free-gib", "0.01")
        assert code == 1
        state, detail = lines["Disk (workspaces)"]
        assert state == "FAIL"
        assert detail.endswith(f"under {home}/jobs: less than 0.01 GiB")
        assert lines["Disk (home)"][0] == "FAIL"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_the_server_is_checked_when_one_is_configured(home: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, lines = doctor(home, TRAINFORGE_SERVER_URL=url)
    assert code == 1
    assert lines["Server"] == ("FAIL", f"{url} cannot be reached: [Errno 111] Connection refused")
    server_home = tmp_path / "server-home"
    server_home.mkdir()
    server = RunningServer(server_home, free_port(), env_for(server_home))
    try:
        server.start()
        code, lines = doctor(home, TRAINFORGE_SERVER_URL=server.url)
    finally:
        server.stop()
    assert code == 0, lines
    assert lines["Server"] == ("ok", f"{server.url} answers /ping")

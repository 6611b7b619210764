"""A private image registry for the tests: Debian's ``docker-registry`` (the CNCF distribution
registry) with htpasswd authentication, on an address the tests choose, stopped by its own pid.
``push`` puts a locally built image into it through a Docker daemon with a login given per
call, never ``docker login`` (that would write this machine's ~/.docker/config.json)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import docker

from tests.conftest import free_port, wait_for_port


@contextlib.contextmanager
def registry(host: str, logins: Sequence[tuple[str, str]]) -> Iterator[str]:
    """A registry on ``host`` that lets in only ``logins`` (user, password); yields host:port."""
    root = Path(tempfile.mkdtemp(prefix="tf-registry-", dir="/tmp"))
    lines = [
        subprocess.run(
            ["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True
        ).stdout.strip()
        for user, password in logins
    ]
    (root / "htpasswd").write_text("\n".join(lines) + "\n")
    port = free_port()
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: '{host}:{port}'}}\n"
        f"auth: {{htpasswd: {{realm: trainforge-test, path: {root / 'htpasswd'}}}}}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(root / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, host=host)
        yield f"{host}:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def push(
    client: docker.APIClient, image: str, ref: str, login: tuple[str, str], keep: bool = False
) -> None:
    """Push ``image`` as ``ref`` (registry/repository:tag) with ``login``; the ``ref`` name is
    removed from the daemon afterwards unless ``keep``, so a job must pull it."""
    repository, _, tag = ref.rpartition(":")
    client.tag(image, repository, tag)
    pushed = list(
        client.push(
            repository,
            tag=tag,
            auth_config={"username": login[0], "password": login[1]},
            stream=True,
            decode=True,
        )
    )
    errors = [p for p in pushed if "error" in p]
    if not keep:
        untag(client, ref)
    assert not errors, errors


def untag(client: docker.APIClient, ref: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.remove_image(ref)

"""credentials_endpoint listens from its start but loads HTTP only when a first container
connects: that first request (and those that come with it) is answered all the same, a job that
never asks costs no HTTP server, and an endpoint stopped before anyone asked lets its port go.
Everything listens on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.credentials_support import ask, fixed_credentials
from trainforge.errors import CredentialsError
from trainforge.runtime.credentials_endpoint import CredentialsEndpoint


def _serving_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "credentials-endpoint"]


def test_the_first_requests_are_answered_while_http_loads(tmp_path: Path) -> None:
    endpoint = CredentialsEndpoint("127.0.0.1", 0, tmp_path / "tokens")
    try:
        token = endpoint.open("job-a", fixed_credentials("ASIAFIRST")).read_text()
        # Several containers asking at once, before anything served: each gets its answer.
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(lambda _: ask(endpoint.url, token), range(8)))
        assert all(status == 200 for status, _ in answers), answers
        assert {body["AccessKeyId"] for _, body in answers} == {"ASIAFIRST"}
        assert ask(endpoint.url, "forged")[0] == 403
    finally:
        endpoint.stop()


def test_an_endpoint_stopped_before_anyone_asked_lets_its_port_go(tmp_path: Path) -> None:
    before = set(_serving_threads())
    endpoint = CredentialsEndpoint("127.0.0.1", 0, tmp_path / "tokens")
    endpoint.start()
    port = endpoint.port
    [waiting] = set(_serving_threads()) - before
    endpoint.stop()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    waiting.join(timeout=10)
    assert not waiting.is_alive()
    # Started again, it listens anew and answers.
    token = endpoint.open("job-b", fixed_credentials("ASIAFIRST")).read_text()
    try:
        assert ask(endpoint.url, token)[0] == 200
    finally:
        endpoint.stop()


def test_a_job_that_never_asks_loads_no_http_server(tmp_path: Path) -> None:
    code = f"""
import sys, time, urllib.request
from trainforge.clients.sts import RoleCredentials
from trainforge.runtime.credentials_endpoint import CredentialsEndpoint
from trainforge.runtime.role_credentials import JobCredentials
served = RoleCredentials("ASIAX", "s", "t", time.time() + 3600)
endpoint = CredentialsEndpoint("127.0.0.1", 0, __import__("pathlib").Path({str(tmp_path)!r}))
token = endpoint.open("job", JobCredentials("role", lambda: served, 300, served)).read_text()
print("http.server" in sys.modules)
request = urllib.request.Request(endpoint.url, headers={{"Authorization": token}})
print(urllib.request.urlopen(request, timeout=10).status, "http.server" in sys.modules)
endpoint.stop()
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    # urllib.request's own import loads http.client, never http.server.
    assert out.stdout.split() == ["False", "200", "True"], out.stdout + out.stderr


def test_an_endpoint_that_cannot_serve_lets_no_request_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainforge.runtime import credentials_http

    def broken(listener: socket.socket, endpoint: CredentialsEndpoint) -> None:
        raise RuntimeError("no HTTP here")

    monkeypatch.setattr(credentials_http, "endpoint_server", broken)
    endpoint = CredentialsEndpoint("127.0.0.1", 0, tmp_path / "tokens")
    token = endpoint.open("job-a", fixed_credentials("ASIANONE")).read_text()
    # Refused or reset at once; a listener left open would hold the request to its timeout.
    with pytest.raises((urllib.error.URLError, ConnectionError)) as raised:
        ask(endpoint.url, token)
    assert "timed out" not in str(raised.value)
    with pytest.raises(CredentialsError, match="could not serve"):
        endpoint.start()

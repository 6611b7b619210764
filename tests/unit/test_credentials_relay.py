"""credentials_relay: a node's relay passes a container's request, with its token, to the
server's credentials endpoint and the answer back unchanged (a forged token gets the endpoint's
403, another path 404, a server that is away 502); credentials_endpoint with a relay: the
containers are given the relay's URL, and an address of the cluster that this machine lacks is
refused, never added to it. Everything listens on loopback."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.credentials_support import ROLE, ask, fixed_credentials
from trainforge.errors import CredentialsError
from trainforge.runtime import credentials_relay
from trainforge.runtime.credentials_endpoint import CredentialsEndpoint


def _relay(upstream: str) -> tuple[credentials_relay._Server, str]:
    server = credentials_relay._Server(("127.0.0.1", 0), credentials_relay._Handler)
    server.upstream = upstream
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _health_check(port: str) -> int:
    from trainforge.engines.swarm import _ANSWERS

    check = [sys.executable, "-S", "-c", _ANSWERS, "127.0.0.1", port]
    return subprocess.run(check, capture_output=True, timeout=30).returncode


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[CredentialsEndpoint]:
    relays: list[str] = []

    def relay(upstream: str) -> str:
        relays.append(upstream)
        return "http://169.254.170.2:51679/v1/credentials"

    made = CredentialsEndpoint("127.0.0.1", 0, tmp_path / "tokens", relay=relay)
    yield made
    made.stop()


def test_the_relay_passes_the_endpoints_answers_back_unchanged(
    endpoint: CredentialsEndpoint,
) -> None:
    token = endpoint.open("job-a", fixed_credentials("ASIARELAYED")).read_text()
    # The containers are told the relay's address; the relay is told the endpoint's.
    assert endpoint.container_url == "http://169.254.170.2:51679/v1/credentials"
    relay, base = _relay(endpoint.url)
    port = str(relay.server_address[1])
    try:
        # The health check the swarm runs in the relay's container: it answers.
        assert _health_check(port) == 0
        status, body = ask(base + credentials_relay.PATH, token)
        assert status == 200
        assert body["AccessKeyId"] == "ASIARELAYED" and body["RoleArn"] == ROLE
        assert ask(base + credentials_relay.PATH, token + "x")[0] == 403
        assert ask(base + credentials_relay.PATH, "")[0] == 403
        assert ask(base + "/v2/other", token)[0] == 404
        endpoint.close("job-a")
        assert ask(base + credentials_relay.PATH, token)[0] == 403
        endpoint.stop()
        status, body = ask(base + credentials_relay.PATH, token)
        assert status == 502
        assert body["message"].startswith("the trainforge server's credentials endpoint did not")
    finally:
        relay.shutdown()
        relay.server_close()
    assert _health_check(port) != 0


def test_an_address_this_machine_lacks_is_refused_not_added(tmp_path: Path) -> None:
    # TEST-NET-2: never an address of this machine.
    missing = "198.51.100.77"
    endpoint = CredentialsEndpoint(missing, 0, tmp_path / "tokens", relay=lambda url: url)
    with pytest.raises(CredentialsError, match="TRAINFORGE_SWARM_SERVER_ADDRESS"):
        endpoint.open("job-a", fixed_credentials("ASIARELAYED"))
    held = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    assert missing not in held
    unknown = CredentialsEndpoint("", 0, tmp_path / "tokens", relay=lambda url: url)
    with pytest.raises(CredentialsError, match="unknown: set TRAINFORGE_SWARM_SERVER_ADDRESS"):
        unknown.open("job-a", fixed_credentials("ASIARELAYED"))


class _Manager:
    """What SwarmEngine.local_address asks of its Docker API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def describe(self) -> str:
        return f"Docker at {self.url}"

    def info(self) -> dict[str, dict[str, str]]:
        return {"Swarm": {"NodeAddr": "10.9.8.7"}}


def test_the_servers_address_towards_the_swarm() -> None:
    from trainforge.engines.swarm import SwarmEngine

    # A manager on TCP: this machine's address on the route to it (loopback to a loopback one).
    engine = SwarmEngine("home", _Manager("tcp://127.0.0.1:2375"))  # type: ignore[arg-type]
    assert engine.local_address() == "127.0.0.1"
    # A manager on a local socket is this machine: its own address in the swarm.
    engine = SwarmEngine("home", _Manager("unix:///var/run/docker.sock"))  # type: ignore[arg-type]
    assert engine.local_address() == "10.9.8.7"

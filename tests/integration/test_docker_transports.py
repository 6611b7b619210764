"""engines.dockerapi reaches the engine two ways: http.client on a local engine's socket, and
docker-py's client (an engine on TCP or SSH, or a client given). Against the real engine, both
run a container through the calls a job makes (inspect the image, create and start, wait, read
the logs, inspect, list, signal, remove) with the same answers, and both say the same when the
image or the container is not there."""

from __future__ import annotations

import uuid
from pathlib import Path, PurePosixPath

import docker
import pytest

from trainforge.engines.base import Mount
from trainforge.engines.dockerapi import DockerApi
from trainforge.engines.dockerapi.transport import SocketTransport, socket_path
from trainforge.errors import ContainerStartError

pytestmark = pytest.mark.docker


@pytest.fixture(params=["socket", "docker-py"])
def api(request: pytest.FixtureRequest) -> DockerApi:
    if request.param == "socket":
        return DockerApi()
    return DockerApi(client=docker.from_env(version="auto"))


def test_a_container_runs_through_either_way_to_the_engine(
    api: DockerApi, images: dict[str, str], tmp_path: Path
) -> None:
    image = images["busybox"]
    (tmp_path / "marker").write_text("marked\n")
    info = api.image(image)
    assert info.id.startswith("sha256:")
    job = f"transport-{uuid.uuid4().hex[:8]}"
    labels = {"trainforge.job": job, "trainforge.instance": "transport-test"}
    container = api.run_container(
        name=job,
        image=image,
        entrypoint=["/bin/sh", "-c"],
        command=["echo one; echo two >&2; cat /opt/ml/marker; exit 3"],
        env={"GREETING": "hello"},
        hostname="algo-1",
        labels=labels,
        mounts=(Mount(str(tmp_path), PurePosixPath("/opt/ml"), read_only=True),),
        network="bridge",
        cpus=1.0,
        memory_bytes=256 << 20,
        shm_bytes=64 << 20,
    )
    try:
        assert api.wait(container) == 3
        lines = [line.text for line in api.container_logs(container, 0, follow=False)]
        # stdout and stderr are copied to the log apart: their order between them may vary.
        assert sorted(lines) == ["marked", "one", "two"], lines
        assert all(line.ts_ns > 0 for line in api.container_logs(container, 0, follow=False))
        state = api.inspect(container)
        assert state is not None
        assert state["State"]["ExitCode"] == 3
        assert state["Config"]["Hostname"] == "algo-1"
        assert "GREETING=hello" in state["Config"]["Env"]
        assert state["HostConfig"]["NanoCpus"] == 1_000_000_000
        assert state["HostConfig"]["Memory"] == 256 << 20
        assert [c["Id"] for c in api.containers(labels)] == [container]
        api.signal(container, "SIGTERM")  # not running any more: nothing to do
    finally:
        api.remove_container(container)
    assert api.inspect(container) is None
    assert api.containers(labels) == []
    assert api.wait(container) is None
    assert list(api.container_logs(container, 0, follow=False)) == []
    api.remove_container(container)  # gone already: nothing to do


def test_a_container_that_cannot_start_says_why_either_way(
    api: DockerApi, images: dict[str, str]
) -> None:
    job = f"transport-{uuid.uuid4().hex[:8]}"
    labels = {"trainforge.job": job, "trainforge.instance": "transport-test"}
    with pytest.raises(ContainerStartError) as raised:
        api.run_container(
            name=job,
            image=images["busybox"],
            entrypoint=["/no/such/program"],
            command=[],
            env={},
            hostname="algo-1",
            labels=labels,
            mounts=(),
            network="bridge",
        )
    assert str(raised.value).startswith("The training container for algo-1 could not start: ")
    assert "/no/such/program" in str(raised.value)
    assert api.containers(labels) == []


def test_the_api_version_is_the_engines_own_read_from_its_ping() -> None:
    # The socket transport reads it from /_ping's Api-Version header (a tenth of /version's
    # time): the same version docker-py's version="auto" asks /version for.
    path = socket_path(DockerApi()._address())
    assert path is not None, "the tests' engine is a local one, on its socket"
    expected = docker.from_env(version="auto").version()["ApiVersion"]
    assert SocketTransport(path, 30).version() == expected

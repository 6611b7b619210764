"""engines.dockerapi speaks the Engine API itself on a local socket (docker-py costs a tenth of a
second to import): the container it creates is asked for with the very request docker-py's
``create_container`` makes of the same arguments, and the engine's errors read as docker-py's
did."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.types
import pytest

from trainforge.engines.base import Mount, MountKind
from trainforge.engines.dockerapi import LOG_DRIVER, LOG_OPTIONS, DockerApi, docker_mount
from trainforge.engines.dockerapi.transport import ApiError, SocketTransport, Transport
from trainforge.errors import ContainerStartError, EngineError


class _Recorded(Transport):
    """What DockerApi asks the engine, answered as a real engine answers it."""

    def __init__(self, start_error: ApiError | None = None) -> None:
        self.calls: list[tuple[str, str, Mapping[str, str] | None, Any]] = []
        self.start_error = start_error

    def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = -1.0,
    ) -> Any:
        self.calls.append((method, path, params, body))
        if path == "/containers/create":
            return {"Id": "c0ffee", "Warnings": []}
        if path.endswith("/start") and self.start_error is not None:
            raise self.start_error
        return None

    def stream(self, path: str, params: Mapping[str, str]) -> Iterator[bytes] | None:
        raise AssertionError("not asked")


MOUNTS = (
    Mount("/jobs/j/hosts/algo-1", PurePosixPath("/opt/ml"), read_only=False),
    Mount("/jobs/j/config", PurePosixPath("/opt/ml/input/config"), read_only=True),
    Mount("tf-cache", PurePosixPath("/cache"), read_only=False, kind=MountKind.VOLUME),
)


@pytest.mark.parametrize(
    "arguments",
    [
        # One host on the default bridge, the image's entrypoint: what a no-op job asks.
        {
            "entrypoint": None,
            "command": ["train"],
            "network": "bridge",
            "aliases": (),
            "cpus": 2.0,
            "memory_bytes": 8 << 30,
            "shm_bytes": 4 << 30,
            "gpu_ids": (),
        },
        # A host of a group on the job's network, its own entrypoint without arguments, GPUs.
        {
            "entrypoint": ["/bin/sh", "-c"],
            "command": [],
            "network": "trainforge-j-abc123",
            "aliases": ("algo-2",),
            "cpus": 64.0,
            "memory_bytes": None,
            "shm_bytes": None,
            "gpu_ids": ("0", "1"),
        },
    ],
)
def test_a_container_is_asked_for_as_docker_py_asks_for_it(arguments: dict[str, Any]) -> None:
    recorded = _Recorded()
    api = DockerApi()
    api._transport = recorded
    api._info = {"NCPU": 8}
    env = {"TRAINING_JOB_NAME": "j", "EMPTY": ""}
    labels = {"trainforge.job": "j", "trainforge.host": "algo-1"}
    container_id = api.run_container(
        name="j-algo-1-abc123",
        image="trainforge/busybox:1",
        env=env,
        hostname="algo-1",
        labels=labels,
        mounts=MOUNTS,
        **arguments,
    )
    assert container_id == "c0ffee"

    client = docker.APIClient(version="1.41")
    cpus = arguments["cpus"]
    host_config = client.create_host_config(
        mounts=[docker_mount(m) for m in MOUNTS],
        network_mode=arguments["network"],
        shm_size=arguments["shm_bytes"],
        mem_limit=arguments["memory_bytes"],
        log_config=docker.types.LogConfig(type=LOG_DRIVER, config=dict(LOG_OPTIONS)),
        nano_cpus=int(min(cpus, 8) * 1e9),
        device_requests=[
            docker.types.DeviceRequest(
                device_ids=list(arguments["gpu_ids"]), capabilities=[["gpu"]]
            )
        ]
        if arguments["gpu_ids"]
        else None,
    )
    networking = (
        client.create_networking_config(
            {
                arguments["network"]: client.create_endpoint_config(
                    aliases=list(arguments["aliases"])
                )
            }
        )
        if arguments["aliases"]
        else None
    )
    config = client.create_container_config(
        "trainforge/busybox:1",
        command=arguments["command"],
        entrypoint=arguments["entrypoint"],
        environment=env,
        hostname="algo-1",
        labels=labels,
        host_config=host_config,
        networking_config=networking,
    )
    # docker-py's _post_json drops the members that are None, then sends JSON.
    expected = json.loads(json.dumps({k: v for k, v in config.items() if v is not None}))
    assert recorded.calls[0] == (
        "POST",
        "/containers/create",
        {"name": "j-algo-1-abc123"},
        expected,
    )
    assert recorded.calls[1][:2] == ("POST", "/containers/c0ffee/start")


def test_a_container_that_cannot_start_is_removed_and_says_why() -> None:
    recorded = _Recorded(start_error=ApiError(400, 'exec: "/nope": no such file or directory'))
    api = DockerApi()
    api._transport = recorded
    with pytest.raises(ContainerStartError) as raised:
        api.run_container(
            name="j-algo-1-abc123",
            image="trainforge/busybox:1",
            entrypoint=["/nope"],
            command=[],
            env={},
            hostname="algo-1",
            labels={},
            mounts=(),
            network="bridge",
        )
    assert str(raised.value) == (
        'The training container for algo-1 could not start: exec: "/nope": no such file or '
        "directory"
    )
    assert recorded.calls[-1] == ("DELETE", "/containers/c0ffee", {"force": "1"}, None)


def test_the_engines_errors_read_as_docker_pys() -> None:
    class Refusing(_Recorded):
        def call(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            status, message = {
                "/containers/gone/kill": (404, "No such container: gone"),
                "/containers/gone/json": (404, "No such container: gone"),
                "/containers/done/kill": (409, "Container done is not running"),
            }.get(path, (500, "the daemon is shutting down"))
            raise ApiError(status, message)

    api = DockerApi()
    api._transport = Refusing()
    api.signal("gone", "SIGTERM")  # already gone: done
    api.signal("done", "SIGTERM")  # not running any more: done
    assert api.inspect("gone") is None
    with pytest.raises(EngineError) as raised:
        api.signal("busy", "SIGTERM")
    assert str(raised.value) == (
        "Docker could not send SIGTERM to a container: the daemon is shutting down"
    )


class _OldEngine(BaseHTTPRequestHandler):
    """An engine whose ping names no API version (as engines before API 1.25 answer)."""

    protocol_version = "HTTP/1.1"
    asked: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        type(self).asked.append(self.path)
        body = b"OK" if self.path == "/_ping" else json.dumps({"ApiVersion": "1.24"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_an_engine_whose_ping_names_no_version_is_asked_its_version(tmp_path: Path) -> None:
    path = str(tmp_path / "engine.sock")
    server = socketserver.ThreadingUnixStreamServer(path, _OldEngine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert SocketTransport(path, 10).version() == "1.24"
        assert _OldEngine.asked == ["/_ping", "/version"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

"""The containers of a job on one Docker engine, and the networks its hosts share: create and
start (with trainforge's log options, never the daemon's), list by label, inspect, wait for,
signal, sample, read the logs of and remove. These are the calls of a job's run, so they go
through the transport (``http.client`` on a local engine's socket), never docker-py, except for
networks.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from trainforge.engines.base import LogLine, Mount
from trainforge.engines.dockerapi.core import EngineCalls
from trainforge.engines.dockerapi.transport import ApiError, Missing, Unreachable
from trainforge.engines.dockerapi.wire import (
    LOG_DRIVER,
    LOG_OPTIONS,
    gpu_request,
    label_filter,
    mount_config,
)
from trainforge.errors import ContainerStartError, EngineError


class ContainerCalls(EngineCalls):
    """A job's containers and networks on this engine."""

    def run_container(
        self,
        *,
        name: str,
        image: str,
        entrypoint: Sequence[str] | None,
        command: Sequence[str] | None,
        env: Mapping[str, str],
        hostname: str,
        labels: Mapping[str, str],
        mounts: Sequence[Mount],
        network: str,
        aliases: Sequence[str] = (),
        cpus: float | None = None,
        memory_bytes: int | None = None,
        shm_bytes: int | None = None,
        gpu_ids: Sequence[str] = (),
    ) -> str:
        """Create and start one container; nothing is left behind when it cannot start. The
        request is the one docker-py's ``create_container`` makes of these arguments."""
        host_config: dict[str, Any] = {
            "NetworkMode": network,
            "LogConfig": {"Type": LOG_DRIVER, "Config": dict(LOG_OPTIONS)},
            "Mounts": [mount_config(m) for m in mounts],
        }
        if memory_bytes is not None:
            host_config["Memory"] = int(memory_bytes)
        if shm_bytes:
            host_config["ShmSize"] = int(shm_bytes)
        if cpus:
            # Docker refuses a CPU limit above the engine's CPU count.
            host_config["NanoCpus"] = int(min(cpus, self.cpus()) * 1e9)
        if gpu_ids:
            host_config["DeviceRequests"] = [gpu_request(gpu_ids)]
        config = {
            "Hostname": hostname,
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "AttachStdin": False,
            "AttachStdout": True,
            "AttachStderr": True,
            "Env": [f"{key}={value}" for key, value in env.items()],
            "Cmd": list(command) if command is not None else None,
            "Image": image,
            "NetworkDisabled": False,
            "Entrypoint": list(entrypoint) if entrypoint is not None else None,
            "HostConfig": host_config,
            "NetworkingConfig": (
                {"EndpointsConfig": {network: {"Aliases": list(aliases)}}} if aliases else None
            ),
            "Labels": dict(labels),
        }
        action = f"create the container for {hostname}"
        container = self.request(
            action,
            "POST",
            "/containers/create",
            {"name": name},
            {key: value for key, value in config.items() if value is not None},
        )
        container_id = str(container["Id"])
        try:
            self._transport.call("POST", f"/containers/{container_id}/start")
        except ApiError as exc:
            self.remove_container(container_id)
            raise ContainerStartError(
                f"The training container for {hostname} could not start: {exc.explanation or exc}"
            ) from exc
        except Unreachable as exc:
            with contextlib.suppress(EngineError):
                self.remove_container(container_id)
            raise self.fail(f"start the container for {hostname}", exc) from exc
        return container_id

    def containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        params = {"all": "1", "filters": json.dumps(label_filter(labels))}
        return list(self.request("list containers", "GET", "/containers/json", params))

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.request("inspect a container", "GET", f"/containers/{container_id}/json")
            )
        except Missing:
            return None

    def wait(self, container_id: str) -> int | None:
        """Block until the container exits; its exit code, or None when it is gone."""
        try:
            result = self.request(
                "wait for a container", "POST", f"/containers/{container_id}/wait", timeout=None
            )
        except Missing:
            return None
        return int(result.get("StatusCode", 0))

    def signal(self, container_id: str, signal: str) -> None:
        self.request_quietly(
            f"send {signal} to a container",
            "POST",
            f"/containers/{container_id}/kill",
            {"signal": signal},
        )

    def stats(self, container_id: str) -> dict[str, Any] | None:
        """One sample of the container's resource use (no waiting for a second one)."""
        try:
            found = self.request(
                "read a container's use",
                "GET",
                f"/containers/{container_id}/stats",
                {"stream": "0", "one-shot": "1"},
            )
        except Missing:
            return None
        return dict(found)

    def container_logs(self, container_id: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        """The container's lines with Docker's timestamps, after ``since_ns`` (roughly: the
        engine takes a float, so callers drop lines at or before their cursor themselves)."""
        return self.read_log(f"/containers/{container_id}/logs", since_ns, follow)

    def create_network(
        self,
        name: str,
        labels: Mapping[str, str],
        internal: bool,
        driver: str = "bridge",
        attachable: bool = False,
    ) -> None:
        action = f"create the network {name}"
        existing = self.call(action, self.api.networks, names=[name])
        if any(n.get("Name") == name for n in existing):
            return
        options = {}
        if internal and driver == "bridge":
            # An internal bridge still gives the machine an address on it, and traffic to the
            # machine's own addresses is never forwarded, so an internal network alone leaves
            # every service of the machine reachable. Without that address the containers
            # reach only each other.
            options["com.docker.network.bridge.inhibit_ipv4"] = "true"
        self.call(
            action,
            self.api.create_network,
            name,
            driver=driver,
            labels=dict(labels),
            internal=internal,
            attachable=attachable,
            options=options or None,
            check_duplicate=True,
        )

    def remove_networks(self, labels: Mapping[str, str]) -> None:
        action = "remove a job's network"
        params = {"filters": json.dumps(label_filter(labels))}
        for network in self.request(action, "GET", "/networks", params):
            self.request_quietly(action, "DELETE", f"/networks/{network['Id']}")

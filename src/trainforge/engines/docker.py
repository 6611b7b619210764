"""The Docker Engine, through its API (docker-py's low-level client): the only module of
trainforge that imports ``docker``. See ``engines.base`` for the contract it keeps.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import docker
import docker.errors
import docker.types
import requests.exceptions

from trainforge.engines.base import (
    BindMount,
    ContainerSpec,
    ContainerState,
    FoundContainer,
    ImageContents,
    ImageInfo,
    LogLine,
)
from trainforge.engines.gpus import nvidia_gpus
from trainforge.errors import ContainerStartError, EngineError, ImageNotFound

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_CONNECTION_ERRORS = (requests.exceptions.ConnectionError, docker.errors.DockerException)


def parse_timestamp_ns(text: str) -> int:
    """Docker's RFC 3339 timestamps (``2026-11-26T12:30:54.123456789Z``) to epoch nanoseconds."""
    date, _, rest = text.partition("T")
    clock = rest.rstrip("Z")
    offset = 0
    for sign in ("+", "-"):
        if sign in clock:
            clock, _, zone = clock.partition(sign)
            hours, _, minutes = zone.partition(":")
            offset = (int(hours) * 3600 + int(minutes or 0) * 60) * (1 if sign == "+" else -1)
            break
    hms, _, fraction = clock.partition(".")
    year, month, day = (int(p) for p in date.split("-"))
    hour, minute, second = (int(p) for p in hms.split(":"))
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


def _split_frame(frame: bytes) -> tuple[int | None, bytes]:
    head, sep, rest = frame.partition(b" ")
    if sep and len(head) >= 20 and head[4:5] == b"-" and head[10:11] == b"T":
        try:
            return parse_timestamp_ns(head.decode("ascii")), rest
        except ValueError:
            pass
    return None, frame


class DockerEngine:
    supports_gpus = True

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._gpus: int | None = None
        self._engine_info: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @property
    def api(self) -> Any:
        """docker-py's low-level client, connected on first use: commands that never touch a
        container must not need a running engine."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = docker.from_env(version="auto", timeout=120)
                    except _CONNECTION_ERRORS as exc:
                        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
                        raise EngineError(
                            f"Cannot reach the Docker engine at {host}: {exc}. Is Docker "
                            "running, and may this user use it?"
                        ) from exc
        return self._client.api

    def describe(self) -> str:
        return f"Docker at {self.api.base_url}"

    def _fail(self, action: str, exc: Exception) -> EngineError:
        if isinstance(exc, _CONNECTION_ERRORS) and not isinstance(exc, docker.errors.APIError):
            return EngineError(
                f"Cannot reach the Docker engine ({self.describe()}) to {action}: {exc}"
            )
        return EngineError(f"Docker could not {action}: {exc}")

    # -- images --------------------------------------------------------------------------------

    def image(self, ref: str) -> ImageInfo:
        try:
            data = self.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            self._pull(ref)
            try:
                data = self.api.inspect_image(ref)
            except docker.errors.ImageNotFound as exc:
                raise ImageNotFound(f"The training image {ref} is not on this machine.") from exc
        except _CONNECTION_ERRORS as exc:
            raise self._fail(f"inspect the image {ref}", exc) from exc
        config = data.get("Config") or {}
        env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
        entrypoint = config.get("Entrypoint")
        cmd = config.get("Cmd")
        return ImageInfo(
            id=data["Id"],
            entrypoint=tuple(entrypoint) if entrypoint else None,
            cmd=tuple(cmd) if cmd else None,
            env=env,
        )

    def _pull(self, ref: str) -> None:
        repository, tag = ref, None
        if "@" not in ref and ":" in ref.rsplit("/", 1)[-1]:
            repository, tag = ref.rsplit(":", 1)
        try:
            self.api.pull(repository, tag=tag or "latest")
        except docker.errors.APIError as exc:
            raise ImageNotFound(
                f"The training image {ref} is not on this machine and pulling it failed: "
                f"{exc.explanation or exc}. Build it or load it into Docker first."
            ) from exc
        except _CONNECTION_ERRORS as exc:
            raise self._fail(f"pull the image {ref}", exc) from exc

    def probe_image(self, ref: str, list_dir: str, executable: str) -> ImageContents:
        """Look into the image's own filesystem (no mounts) through a created, never started,
        container: the first names under ``list_dir`` and whether ``executable`` is on PATH."""
        info = self.image(ref)
        try:
            probe = self.api.create_container(
                ref, entrypoint=["/trainforge-probe"], labels={"trainforge.probe": "1"}
            )
        except _CONNECTION_ERRORS as exc:
            raise self._fail(f"inspect the image {ref}", exc) from exc
        try:
            return ImageContents(
                entries_under=tuple(self._names_under(probe["Id"], list_dir)),
                on_path=self._on_path(probe["Id"], executable, info.env.get("PATH")),
            )
        except _CONNECTION_ERRORS as exc:
            raise self._fail(f"inspect the image {ref}", exc) from exc
        finally:
            self.remove(probe["Id"])

    def _names_under(self, container_id: str, path: str, limit: int = 10) -> list[str]:
        try:
            stream, _ = self.api.get_archive(container_id, path, chunk_size=64 * 1024)
        except docker.errors.NotFound:
            return []
        head = b""
        for chunk in stream:
            head = chunk
            break
        names: list[str] = []
        try:
            with tarfile.open(fileobj=io.BytesIO(head), mode="r|") as tar:
                for member in tar:
                    # The first member is the directory itself.
                    if "/" in member.name.rstrip("/"):
                        names.append(member.name.split("/", 1)[1])
                    if len(names) >= limit:
                        break
        except (tarfile.TarError, EOFError):
            pass
        return names

    def _on_path(self, container_id: str, name: str, path_env: str | None) -> bool:
        for directory in (path_env or _DEFAULT_PATH).split(":"):
            if not directory:
                continue
            response = self.api.head(
                self.api._url("/containers/{0}/archive", container_id),
                params={"path": f"{directory.rstrip('/')}/{name}"},
            )
            if response.status_code != 200:
                continue
            header = response.headers.get("X-Docker-Container-Path-Stat")
            if not header:
                return True
            stat = json.loads(base64.b64decode(header))
            if stat.get("linkTarget") or int(stat.get("mode", 0)) & 0o111:
                return True
        return False

    # -- networks --------------------------------------------------------------------------------

    def create_network(self, name: str, labels: Mapping[str, str], internal: bool = False) -> None:
        try:
            existing = self.api.networks(names=[name])
            if not any(n.get("Name") == name for n in existing):
                self.api.create_network(
                    name, driver="bridge", labels=dict(labels), internal=internal
                )
        except _CONNECTION_ERRORS as exc:
            raise self._fail(f"create the network {name}", exc) from exc

    def remove_networks(self, labels: Mapping[str, str]) -> None:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        try:
            for network in self.api.networks(filters=filters):
                with contextlib.suppress(docker.errors.NotFound):
                    self.api.remove_network(network["Id"])
        except _CONNECTION_ERRORS as exc:
            raise self._fail("remove a job's network", exc) from exc

    # -- containers ------------------------------------------------------------------------------

    def launch(self, spec: ContainerSpec) -> str:
        mounts = [_mount(m) for m in spec.mounts]
        host_config: dict[str, Any] = {
            "mounts": mounts,
            "network_mode": spec.network or "bridge",
            "shm_size": spec.shm_bytes,
            "mem_limit": spec.memory_bytes,
            "log_config": docker.types.LogConfig(type="json-file"),
            "extra_hosts": dict(spec.extra_hosts) or None,
        }
        if spec.cpus:
            # Docker refuses a CPU limit above the engine's CPU count.
            host_config["nano_cpus"] = int(min(spec.cpus, self._engine_cpus()) * 1e9)
        if spec.gpu_ids:
            host_config["device_requests"] = [
                docker.types.DeviceRequest(device_ids=list(spec.gpu_ids), capabilities=[["gpu"]])
            ]
        elif spec.gpus:
            host_config["device_requests"] = [
                docker.types.DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])
            ]
        networking = None
        if spec.network and spec.network not in ("bridge", "none", "host") and spec.network_aliases:
            networking = self.api.create_networking_config(
                {spec.network: self.api.create_endpoint_config(aliases=list(spec.network_aliases))}
            )
        try:
            container = self.api.create_container(
                spec.image,
                command=list(spec.command) if spec.command is not None else None,
                entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
                environment=dict(spec.env),
                hostname=spec.hostname,
                labels=dict(spec.labels),
                name=spec.name,
                host_config=self.api.create_host_config(**host_config),
                networking_config=networking,
            )
            container_id = str(container["Id"])
        except _CONNECTION_ERRORS as exc:
            raise self._fail(f"create the container for {spec.hostname}", exc) from exc
        try:
            self.api.start(container_id)
        except docker.errors.APIError as exc:
            self.remove(container_id)
            raise ContainerStartError(
                f"The training container for {spec.hostname} could not start: "
                f"{exc.explanation or exc}"
            ) from exc
        except _CONNECTION_ERRORS as exc:
            self.remove(container_id)
            raise self._fail(f"start the container for {spec.hostname}", exc) from exc
        return container_id

    def state(self, container_id: str) -> ContainerState | None:
        try:
            data = self.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return None
        except _CONNECTION_ERRORS as exc:
            raise self._fail("inspect a container", exc) from exc
        state = data.get("State") or {}
        running = bool(state.get("Running")) or state.get("Status") in ("created", "restarting")
        return ContainerState(
            running=running,
            exit_code=None if running else int(state.get("ExitCode", 0)),
            oom_killed=bool(state.get("OOMKilled")),
            error=str(state.get("Error") or ""),
        )

    def wait(self, container_id: str, timeout: float | None = None) -> int | None:
        try:
            result = self.api.wait(container_id, timeout=timeout)
        except docker.errors.NotFound:
            return None
        except requests.exceptions.ReadTimeout:
            return None
        except _CONNECTION_ERRORS as exc:
            raise self._fail("wait for a container", exc) from exc
        return int(result.get("StatusCode", 0))

    def signal(self, container_id: str, signal: str) -> None:
        try:
            self.api.kill(container_id, signal=signal)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            # 409: the container is not running any more; that is what we wanted.
            if exc.status_code != 409:
                raise self._fail(f"send {signal} to a container", exc) from exc
        except _CONNECTION_ERRORS as exc:
            raise self._fail(f"send {signal} to a container", exc) from exc

    def logs(self, container_id: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        try:
            stream = self.api.logs(
                container_id,
                stdout=True,
                stderr=True,
                stream=True,
                follow=follow,
                timestamps=True,
                since=since_ns / 1e9 if since_ns > 0 else None,
            )
        except docker.errors.NotFound:
            return
        except _CONNECTION_ERRORS as exc:
            raise self._fail("read a container's logs", exc) from exc
        pending = b""
        pending_ts = 0
        try:
            for frame in stream:
                ts, payload = _split_frame(frame)
                if pending:
                    # A long line arrives in several messages; only the first one's time counts.
                    payload = pending + payload
                    ts = pending_ts
                elif ts is None:
                    ts = pending_ts
                lines = payload.split(b"\n")
                pending = lines.pop()
                pending_ts = ts or 0
                for line in lines:
                    yield LogLine(ts or 0, line.decode("utf-8", "replace"))
        except _CONNECTION_ERRORS as exc:
            raise self._fail("read a container's logs", exc) from exc
        if pending:
            yield LogLine(pending_ts, pending.decode("utf-8", "replace"))

    def remove(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            # 409: removal already in progress.
            if exc.status_code != 409:
                raise self._fail("remove a container", exc) from exc
        except _CONNECTION_ERRORS as exc:
            raise self._fail("remove a container", exc) from exc

    def find(self, labels: Mapping[str, str]) -> list[FoundContainer]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        try:
            found = self.api.containers(all=True, filters=filters)
        except _CONNECTION_ERRORS as exc:
            raise self._fail("list containers", exc) from exc
        return [FoundContainer(c["Id"], c.get("Labels") or {}) for c in found]

    def _info(self) -> dict[str, Any]:
        if self._engine_info is None:
            self._engine_info = dict(self.api.info())
        return self._engine_info

    def _engine_cpus(self) -> float:
        return float(self._info().get("NCPU") or os.cpu_count() or 1)

    def gpu_count(self) -> int:
        """NVIDIA GPUs this engine can hand to containers: the machine's, when the engine runs
        here (a remote engine's GPUs are not known, so none are counted)."""
        if self._gpus is None:
            host = os.environ.get("DOCKER_HOST", "")
            self._gpus = len(nvidia_gpus()) if not host or host.startswith("unix://") else 0
        return self._gpus


def _mount(mount: BindMount) -> docker.types.Mount:
    return docker.types.Mount(
        target=str(mount.target), source=str(mount.source), type="bind", read_only=mount.read_only
    )

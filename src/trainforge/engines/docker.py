"""The local Docker engine: every host of a job is a container on one Docker engine, the
single-machine case of the contract in ``engines.base``. Hosts of a multi-host job share a
bridge network of the job's own (internal with network isolation) on which each answers to its
``algo-i`` name; a single host gets the default bridge, or an internal network of its own
when isolated (its interface exists, as resourceconfig.json says, with no route out).

Containers carry labels (job, host, log stream, and the trainforge home they belong to), which is
how a restarted worker finds them again. One thread per running container waits on it, so
``wait`` learns of an exit the moment Docker does without polling.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from trainforge.domain.allocation import Node
from trainforge.engines.base import (
    AgentTask,
    GroupSpec,
    HostState,
    HostUsage,
    ImageContents,
    ImageInfo,
    LogLine,
    Mount,
    SourceOf,
    TaskResult,
    signal_of_exit_code,
)
from trainforge.engines.dockerapi import (
    HOME_LABEL,
    HOST_LABEL,
    JOB_LABEL,
    STREAM_LABEL,
    DockerApi,
    parse_time,
)
from trainforge.engines.gpus import nvidia_gpus
from trainforge.errors import EngineError

LOCAL_NODE = "local"
_MiB = 1 << 20


def host_state(host: str, stream: str, data: dict[str, Any]) -> HostState:
    """A container's inspect data as the contract's HostState."""
    state = data.get("State") or {}
    running = bool(state.get("Running")) or state.get("Status") in ("created", "restarting")
    code = None if running else int(state.get("ExitCode", 0))
    return HostState(
        host=host,
        stream=stream,
        running=running,
        exit_code=code,
        signal=signal_of_exit_code(code),
        oom_killed=bool(state.get("OOMKilled")),
        finished_at=None if running else parse_time(state.get("FinishedAt")),
        error=str(state.get("Error") or ""),
    )


def host_usage(data: dict[str, Any]) -> HostUsage | None:
    """A container's stats as HostUsage; memory as ``docker stats`` shows it (without the
    page cache it could give back)."""
    cpu = ((data.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    memory = data.get("memory_stats") or {}
    if cpu is None or "usage" not in memory:
        return None  # the container is not running
    details = memory.get("stats") or {}
    cache = details.get("inactive_file", details.get("total_inactive_file", 0))
    return HostUsage(
        at=time.time(),
        cpu_seconds=int(cpu) / 1e9,
        memory_bytes=max(int(memory["usage"]) - int(cache), 0),
        memory_limit_bytes=int(memory.get("limit") or 0),
    )


@dataclass
class _Watch:
    """The containers of one job being waited on, and what each has become."""

    containers: dict[str, str]
    streams: dict[str, str]
    states: dict[str, HostState]
    changed: threading.Event = field(default_factory=threading.Event)
    error: EngineError | None = None


class DockerEngine:
    spans_machines = False

    def __init__(self, instance_label: str, api: DockerApi | None = None) -> None:
        self.instance_label = instance_label
        self.docker = api or DockerApi()
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return self.docker.describe()

    def nodes(self) -> list[Node]:
        """This machine: its CPUs, memory and NVIDIA GPUs (a remote engine's GPUs are unknown,
        so none are counted)."""
        # A placed job's hosts start next, with a CPU limit that needs the engine's CPU count:
        # it is asked for meanwhile.
        self.docker.prefetch_info()
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // _MiB
        host = os.environ.get("DOCKER_HOST", "")
        gpus = nvidia_gpus() if not host or host.startswith("unix://") else []
        return [Node(LOCAL_NODE, float(os.cpu_count() or 1), int(memory), tuple(gpus))]

    def image(self, ref: str, source: SourceOf | None = None) -> ImageInfo:
        self.docker.prefetch_info()
        return self.docker.image(ref, source)

    def probe_image(self, ref: str, list_dir: str, executable: str) -> ImageContents:
        return self.docker.probe_image(ref, list_dir, executable)

    def _labels(self, job: str) -> dict[str, str]:
        return {JOB_LABEL: job, HOME_LABEL: self.instance_label}

    # -- start ---------------------------------------------------------------------------------

    def start(self, group: GroupSpec) -> None:
        multi = len(group.hosts) > 1
        labels = self._labels(group.job)
        # An isolated host alone still gets a network of its own, internal (no route out):
        # resourceconfig.json names its interface, which must exist.
        if multi or group.isolated:
            network = f"trainforge-{group.job}-{os.urandom(3).hex()}"
            self.docker.create_network(network, labels, internal=group.isolated)
        else:
            network = "bridge"
        # On one machine a secret file is the server's own file, bind-mounted read-only.
        secret_mounts = tuple(
            Mount(str(secret.source), secret.target, read_only=True)
            for secret in group.secret_files
        )
        started: dict[str, str] = {}
        try:
            for host in group.hosts:
                started[host.host] = self.docker.run_container(
                    name=f"{group.job}-{host.host}-{os.urandom(3).hex()}",
                    image=host.image,
                    entrypoint=host.entrypoint,
                    command=host.command,
                    env=host.env,
                    hostname=host.host,
                    labels={**labels, HOST_LABEL: host.host, STREAM_LABEL: host.stream},
                    mounts=(*host.mounts, *secret_mounts),
                    network=network,
                    aliases=(host.host,) if multi else (),
                    cpus=host.limits.cpus,
                    memory_bytes=host.limits.memory_bytes,
                    shm_bytes=host.limits.shm_bytes,
                    gpu_ids=host.limits.gpu_ids,
                )
        except BaseException:
            # All or nothing: what did start goes, the others never will.
            with contextlib.suppress(EngineError):
                self.remove(group.job)
            raise
        # Waiting on the containers starts now: an exit is known the moment Docker knows it.
        streams = {spec.host: spec.stream for spec in group.hosts}
        watch = _Watch(
            started, streams, {h: HostState(h, streams[h], running=True) for h in started}
        )
        with self._lock:
            self._watches[group.job] = watch
        for name, container_id in started.items():
            self._follow(watch, group.job, name, container_id)

    # -- find, wait ----------------------------------------------------------------------------

    def _find(self, job: str) -> tuple[dict[str, str], dict[str, str]]:
        containers: dict[str, str] = {}
        streams: dict[str, str] = {}
        for found in self.docker.containers(self._labels(job)):
            labels = found.get("Labels") or {}
            host = labels.get(HOST_LABEL)
            if host:
                containers[host] = str(found["Id"])
                streams[host] = labels.get(STREAM_LABEL, "")
        return containers, streams

    def container_ids(self, job: str) -> dict[str, str]:
        return self._find(job)[0]

    def usage(self, job: str) -> dict[str, HostUsage]:
        # The containers this engine waits on are known: no listing every sampling round.
        found = {}
        for host, container_id in self._containers(job).items():
            data = self.docker.stats(container_id)
            usage = host_usage(data) if data else None
            if usage is not None:
                found[host] = usage
        return found

    def states(self, job: str) -> dict[str, HostState]:
        containers, streams = self._find(job)
        states = {}
        for host, container_id in containers.items():
            data = self.docker.inspect(container_id)
            if data is not None:
                states[host] = host_state(host, streams[host], data)
        return states

    def wait(self, job: str, timeout: float) -> dict[str, HostState]:
        with self._lock:
            watch = self._watches.get(job)
        if watch is None:
            watch = self._watch(job)
        if watch.changed.wait(timeout):
            watch.changed.clear()
        if watch.error is not None:
            with self._lock:
                self._watches.pop(job, None)
            raise watch.error
        return dict(watch.states)

    def _watch(self, job: str) -> _Watch:
        containers, streams = self._find(job)
        watch = _Watch(containers, streams, {})
        for host, container_id in containers.items():
            data = self.docker.inspect(container_id)
            if data is None:
                continue
            state = host_state(host, streams[host], data)
            watch.states[host] = state
            if state.running:
                self._follow(watch, job, host, container_id)
        with self._lock:
            self._watches[job] = watch
        return watch

    def _follow(self, watch: _Watch, job: str, host: str, container_id: str) -> None:
        threading.Thread(
            target=self._wait_for,
            args=(watch, host, container_id),
            name=f"wait-{job}-{host}",
            daemon=True,
        ).start()

    def _wait_for(self, watch: _Watch, host: str, container_id: str) -> None:
        try:
            self.docker.wait(container_id)
            data = self.docker.inspect(container_id)
            if data is None:
                watch.states.pop(host, None)
            else:
                watch.states[host] = host_state(host, watch.streams[host], data)
        except EngineError as exc:
            watch.error = exc
        finally:
            watch.changed.set()

    # -- stop, logs, remove --------------------------------------------------------------------

    def _containers(self, job: str) -> dict[str, str]:
        with self._lock:
            watch = self._watches.get(job)
        if watch is not None:
            return dict(watch.containers)
        return self._find(job)[0]

    def terminate(self, job: str) -> None:
        for container_id in self._containers(job).values():
            self.docker.signal(container_id, "SIGTERM")

    def kill(self, job: str) -> None:
        for container_id in self._containers(job).values():
            self.docker.signal(container_id, "SIGKILL")

    def logs(self, job: str, host: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        container_id = self._containers(job).get(host)
        if container_id is None:
            return iter(())
        return self.docker.container_logs(container_id, since_ns, follow)

    def remove(self, job: str) -> None:
        with self._lock:
            self._watches.pop(job, None)
        labels = self._labels(job)
        for found in self.docker.containers(labels):
            self.docker.remove_container(str(found["Id"]))
        self.docker.remove_networks(labels)

    def hold_address(self, address: str, image: str) -> None:
        code, output = self.docker.run_once(
            image,
            ("python3", "-m", "trainforge.runtime.linkaddress", address),
            host_network_admin=True,
        )
        if code != 0:
            lines = output.strip().splitlines()
            raise EngineError(
                f"{self.describe()} could not add {address} to the machine's loopback interface "
                f"with {image}: {lines[-1] if lines else f'exit code {code}'}"
            )

    def relay_credentials(self, address: str, port: int, upstream: str, image: str) -> int:
        raise NotImplementedError("the local engine's containers reach the server itself")

    def run_task(
        self,
        task: AgentTask,
        timeout: float,
        should_stop: Callable[[], bool] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> TaskResult:
        raise NotImplementedError("the local engine runs the agent's work in-process")

"""The Docker Swarm engine: each host of a job is a single-replica service pinned to the node the
allocation chose (one host per node), on an overlay network of the job's own where it answers to
its ``algo-i`` name (DNS round robin: no IPVS needed). The contract of ``engines.base``, spanning
machines: the server talks only to the manager (``DOCKER_HOST``), and the hosts' /opt/ml trees
live on their nodes, filled and emptied by agent tasks (``run_task``).

- Nodes are the swarm's Ready, Active nodes; a node labelled ``trainforge.gpus=N`` has N GPUs
  (whole-node placement by label: Swarm's generic resources reject running tasks when a node
  is updated). A host's GPUs reach it as ``NVIDIA_VISIBLE_DEVICES`` under the NVIDIA runtime,
  which GPU nodes run as their default.
- ``start`` is all or nothing: the job starts when every host's task runs; when they do not all
  run within ``place_seconds``, everything of the job is removed and the start fails.
- Stopping a host makes the swarm shut its task down (``DockerApi.stop_service_task``): SIGTERM
  and, after the stop grace period each service carries, SIGKILL, on the node itself, whatever
  happens to the server meanwhile; the task, its exit code and its log stay until the job is
  removed.
- A host whose node is down (its daemon gone) is lost.
- A job's secret files (its credentials token) are swarm secrets of the job, mounted read-only
  in its hosts; the credentials relay is one global service of the server, a task on every node
  (``runtime.credentials_relay``), left running between jobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from trainforge.domain.allocation import Node
from trainforge.engines.base import (
    AgentTask,
    GroupSpec,
    HostState,
    HostUsage,
    ImageContents,
    ImageInfo,
    LogLine,
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
from trainforge.errors import ContainerStartError, EngineError, StorageCancelled

ROLE_LABEL = "trainforge.role"
GPU_LABEL = "trainforge.gpus"
_MiB = 1 << 20
_POLL_SECONDS = 0.1
# How long the credentials relay may take to answer on every node.
_RELAY_SECONDS = 60.0

# Task states (swarm's TaskState): on the way to running, and ended.
_STARTING = {
    "new",
    "allocated",
    "pending",
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
}
_ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}


class PlacementError(EngineError):
    """The hosts of a job could not all be started on the swarm in time."""


_LOG_ERROR = "Error grabbing logs: "
RELAY_FIRST_PORT = 51679
# The relay's health check: it accepts a connection on its address and port.
_ANSWERS = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2)"


def _labels_of(service: dict[str, Any]) -> dict[str, str]:
    return dict((service.get("Spec") or {}).get("Labels") or {})


def _relay_port(service: dict[str, Any]) -> int:
    """The port a credentials relay service listens at (its command's fifth word)."""
    command = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Command") or []
    try:
        return int(command[4])
    except (IndexError, ValueError):
        return 0


def _first(tasks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The first task of each service: the one that runs its host (a service never restarts;
    a task made later only stands in for a stopped host and never runs)."""
    oldest: dict[str, dict[str, Any]] = {}
    for task in tasks:
        service = task["ServiceID"]
        if service not in oldest or task["CreatedAt"] < oldest[service]["CreatedAt"]:
            oldest[service] = task
    return oldest


_NON_ZERO_EXIT = re.compile(r"non-zero exit \((\d+)\)")


def _exit_code(status: dict[str, Any]) -> int | None:
    """An ended task's exit code: its container's, or what its state and error say while the
    container status has not reached the manager yet."""
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    if code is not None:
        return int(code)
    if status.get("State") == "complete":
        return 0
    found = _NON_ZERO_EXIT.search(str(status.get("Err") or ""))
    return int(found.group(1)) if found else None


class SwarmEngine:
    spans_machines = True

    def __init__(
        self,
        instance_label: str,
        api: DockerApi | None = None,
        place_seconds: float = 60.0,
        dns: tuple[str, ...] = (),
    ) -> None:
        self.instance_label = instance_label
        self.docker = api or DockerApi()
        self.place_seconds = place_seconds
        self.dns = dns
        self._seen: dict[str, set[str]] = {}
        # A job's host services never change once it started: looked up once.
        self._services: dict[str, dict[str, dict[str, Any]]] = {}
        self._last: dict[str, dict[str, HostState]] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"the swarm of {self.docker.describe()}"

    def _labels(self, job: str) -> dict[str, str]:
        return {JOB_LABEL: job, HOME_LABEL: self.instance_label}

    def _name(self, job: str, what: str) -> str:
        # Service names are DNS labels (63 characters); job names alone may be 63.
        key = hashlib.sha256(f"{self.instance_label}/{job}".encode()).hexdigest()[:12]
        return f"tf-{key}-{what}"

    # -- nodes and images ----------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        found = []
        for node in self.docker.swarm_nodes():
            spec = node.get("Spec") or {}
            status = node.get("Status") or {}
            if status.get("State") != "ready" or spec.get("Availability") != "active":
                continue
            resources = (node.get("Description") or {}).get("Resources") or {}
            labels = spec.get("Labels") or {}
            try:
                gpus = int(labels.get(GPU_LABEL, "0"))
            except ValueError:
                gpus = 0
            found.append(
                Node(
                    str(node["ID"]),
                    float(resources.get("NanoCPUs", 0)) / 1e9,
                    int(resources.get("MemoryBytes", 0)) // _MiB,
                    tuple(str(i) for i in range(gpus)),
                )
            )
        return sorted(found, key=lambda n: n.name)

    def _down_nodes(self) -> set[str]:
        return {
            str(n["ID"])
            for n in self.docker.swarm_nodes()
            if (n.get("Status") or {}).get("State") != "ready"
        }

    def image(self, ref: str, source: SourceOf | None = None) -> ImageInfo:
        return self.docker.image(ref, source)

    def probe_image(self, ref: str, list_dir: str, executable: str) -> ImageContents:
        return self.docker.probe_image(ref, list_dir, executable)

    # -- start ---------------------------------------------------------------------------------

    def start(self, group: GroupSpec) -> None:
        labels = self._labels(group.job)
        network = self._name(group.job, f"net-{secrets.token_hex(3)}")
        try:
            self.docker.create_network(network, labels, internal=group.isolated, driver="overlay")
            held = []
            for secret in group.secret_files:
                name = self._name(group.job, f"secret-{secrets.token_hex(4)}")
                held.append(
                    (
                        self.docker.create_secret(name, secret.source.read_bytes(), labels),
                        name,
                        secret.target,
                    )
                )
            services = []
            for host in group.hosts:
                env = dict(host.env)
                if host.limits.gpu_ids:
                    env["NVIDIA_VISIBLE_DEVICES"] = ",".join(host.limits.gpu_ids)
                services.append(
                    self.docker.create_service(
                        name=self._name(group.job, host.host),
                        image=host.image,
                        entrypoint=host.entrypoint,
                        command=host.command,
                        env=env,
                        labels={
                            **labels,
                            HOST_LABEL: host.host,
                            STREAM_LABEL: host.stream,
                            ROLE_LABEL: "host",
                        },
                        mounts=host.mounts,
                        node=host.node,
                        hostname=host.host,
                        network=network,
                        aliases=(host.host,),
                        cpus=host.limits.cpus,
                        memory_bytes=host.limits.memory_bytes,
                        shm_bytes=host.limits.shm_bytes,
                        grace_seconds=group.stop_grace_seconds,
                        dns=self.dns,
                        auth=group.registry_auth,
                        secrets=held,
                    )
                )
            self._wait_all_running(group, services)
        except BaseException:
            # All or nothing: no host of a job that could not start is left behind.
            with contextlib.suppress(EngineError):
                self.remove(group.job)
            raise

    def _wait_all_running(self, group: GroupSpec, services: list[str]) -> None:
        deadline = time.monotonic() + self.place_seconds
        while True:
            latest = _first(self.docker.tasks(services))
            started = 0
            waiting = []
            for service in services:
                status = (latest.get(service) or {}).get("Status") or {}
                state = status.get("State", "new")
                if state in _STARTING:
                    waiting.append(status.get("Err") or state)
                    continue
                if state == "rejected":
                    error = status.get("Err") or status.get("Message") or state
                    raise ContainerStartError(f"A host's container could not start: {error}")
                started += 1
            if started == len(services):
                return
            if time.monotonic() >= deadline:
                raise PlacementError(
                    f"{len(waiting)} of {len(services)} hosts of the job could not start on the "
                    f"swarm within {self.place_seconds:g} s ({'; '.join(sorted(set(waiting)))})."
                )
            time.sleep(_POLL_SECONDS)

    # -- find, wait ----------------------------------------------------------------------------

    def _host_services(self, job: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            cached = self._services.get(job)
        if cached is not None:
            return cached
        found = {}
        for service in self.docker.services({**self._labels(job), ROLE_LABEL: "host"}):
            labels = (service.get("Spec") or {}).get("Labels") or {}
            if labels.get(HOST_LABEL):
                found[labels[HOST_LABEL]] = service
        if found:
            with self._lock:
                self._services[job] = found
        return found

    def states(self, job: str) -> dict[str, HostState]:
        services = self._host_services(job)
        first = _first(self.docker.tasks([s["ID"] for s in services.values()]))
        active = [t for t in first.values() if t["Status"]["State"] not in _ENDED]
        down = self._down_nodes() if active else set()
        states = {}
        for host, service in services.items():
            labels = service["Spec"].get("Labels") or {}
            stream = labels.get(STREAM_LABEL, "")
            task = first.get(service["ID"])
            if task is None:
                continue
            status = task.get("Status") or {}
            if status.get("State", "") not in _ENDED:
                if task.get("NodeID") not in down:
                    states[host] = HostState(host, stream, running=True)
                continue  # its machine is gone: the host is lost
            code = _exit_code(status)
            if code is None:
                continue  # it never ran, or its node took the answer with it
            states[host] = HostState(
                host,
                stream,
                running=False,
                exit_code=code,
                signal=signal_of_exit_code(code),
                finished_at=parse_time(status.get("Timestamp")),
                error=str(status.get("Err") or ""),
            )
        with self._lock:
            self._last[job] = states
        return states

    def wait(self, job: str, timeout: float) -> dict[str, HostState]:
        deadline = time.monotonic() + timeout
        with self._lock:
            seen = self._seen.setdefault(job, set())
        while True:
            states = self.states(job)
            ended = {h for h, s in states.items() if not s.running}
            if ended - seen or time.monotonic() >= deadline:
                seen |= ended
                return states
            time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    # -- stop, logs, remove --------------------------------------------------------------------

    def terminate(self, job: str) -> None:
        running = {h for h, state in self.states(job).items() if state.running}
        token = secrets.token_hex(4)
        for host, service in self._host_services(job).items():
            if host in running:
                self.docker.stop_service_task(service["ID"], token)

    def kill(self, job: str) -> None:
        """The swarm kills each host itself once its stop grace period has passed (the grace
        was given to it when the host started); nothing is left to send."""
        self.terminate(job)

    def logs(self, job: str, host: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        service = self._host_services(job).get(host)
        if service is None:
            return
        last = since_ns
        while True:
            # The states the job's watch read last (a poll of its own when there is none).
            with self._lock:
                known = self._last.get(job)
            state = (known if known is not None else self.states(job)).get(host)
            running = follow and state is not None and state.running
            # The log of the task that runs the host, not the service's: once a stop has left
            # an unplaceable task beside it, Docker answers the service's log incompletely.
            task = _first(self.docker.tasks([service["ID"]])).get(service["ID"])
            lines = (
                self.docker.task_logs(task["ID"], last, follow=False)
                if task is not None
                else iter(())
            )
            for line in lines:
                if line.text.startswith(_LOG_ERROR):
                    # Docker's own complaint about a task that has no log (the unplaceable
                    # task a stop leaves), stamped with its own time: not the host's output,
                    # and it must not move the cursor past lines still to come.
                    continue
                if last and line.ts_ns <= last:
                    continue
                last = max(last, line.ts_ns)
                yield line
            if not running:
                return
            time.sleep(0.5)

    def container_ids(self, job: str) -> dict[str, str]:
        services = self._host_services(job)
        first = _first(self.docker.tasks([s["ID"] for s in services.values()]))
        found = {}
        for host, service in services.items():
            status = (first.get(service["ID"]) or {}).get("Status") or {}
            container = (status.get("ContainerStatus") or {}).get("ContainerID")
            if container and status.get("State") not in _ENDED:
                found[host] = str(container)
        return found

    def usage(self, job: str) -> dict[str, HostUsage]:
        # A manager cannot read the containers of other nodes: the agent beside each host
        # samples it on its node (``runtime.agent`` attend).
        raise NotImplementedError("a Swarm manager cannot read its nodes' container stats")

    def remove(self, job: str) -> None:
        labels = self._labels(job)
        services = self.docker.services(labels)
        for service in services:
            self.docker.remove_service(service["ID"])
        # The tasks' containers go with their services, on each node, a moment later: wait, so
        # that nothing of the job is left when this returns.
        deadline = time.monotonic() + 30
        ids = [s["ID"] for s in services]
        while ids and self.docker.tasks(ids) and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.docker.remove_networks(labels)
                break
            except EngineError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        self.docker.remove_secrets(labels)
        with self._lock:
            self._seen.pop(job, None)
            self._services.pop(job, None)
            self._last.pop(job, None)

    # -- agents --------------------------------------------------------------------------------

    def _follow_task(
        self, service: str, on_line: Callable[[str], None], done: threading.Event
    ) -> None:
        """Hand the task's lines to ``on_line`` until it is done. A follow can end before the
        task starts or while it runs: it is taken up again after the last line seen."""
        last = 0
        while not done.is_set():
            try:
                for line in self.docker.service_logs(service, last, True):
                    if line.ts_ns > last:
                        last = line.ts_ns
                        on_line(line.text)
            except Exception:  # the service is going away; the loop's test says whether
                pass
            done.wait(_POLL_SECONDS)

    def hold_address(self, address: str, image: str) -> None:
        raise NotImplementedError("the swarm's nodes hold the address in their relay")

    def local_address(self) -> str:
        """This machine's address towards the swarm: where its nodes reach this machine."""
        url = urlsplit(self.docker.describe().removeprefix("Docker at "))
        if url.scheme in ("tcp", "http", "https") and url.hostname:
            family = socket.AF_INET6 if ":" in url.hostname else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                # No packet is sent: connecting a datagram socket only picks the route.
                probe.connect((url.hostname, url.port or 2375))
                return str(probe.getsockname()[0])
        # The manager is this machine: its address in the swarm.
        return str((self.docker.info().get("Swarm") or {}).get("NodeAddr") or "")

    def relay_credentials(self, address: str, port: int, upstream: str, image: str) -> int:
        """Port 0: the port this server's relay already has, else the lowest one from
        ``RELAY_FIRST_PORT`` that no other server's relay on the swarm uses (each server of a
        swarm has its own relay, since each knows only its own jobs' tokens)."""
        relays = self.docker.services({ROLE_LABEL: "credentials-relay"})
        ours = [r for r in relays if _labels_of(r).get(HOME_LABEL) == self.instance_label]
        if not port:
            taken = {_relay_port(r) for r in relays if r not in ours}
            mine = [p for p in map(_relay_port, ours) if p and p not in taken]
            free = (p for p in itertools.count(RELAY_FIRST_PORT) if p not in taken)
            port = mine[0] if mine else next(free)
        relay = ["python3", "-m", "trainforge.runtime.credentials_relay"]
        command = [*relay, address, str(port), upstream]
        service = None
        for found in ours:
            spec = found["Spec"]["TaskTemplate"]["ContainerSpec"]
            if spec.get("Image", "").split("@")[0] == image and spec.get("Command") == command:
                service = str(found["ID"])
            else:
                # The server's endpoint moved (a restart on another port) or the image changed.
                self.docker.remove_service(str(found["ID"]))
        if service is None:
            key = hashlib.sha256(self.instance_label.encode()).hexdigest()[:12]
            labels = {HOME_LABEL: self.instance_label, ROLE_LABEL: "credentials-relay"}
            deadline = time.monotonic() + 30
            while True:
                try:
                    service = self.docker.create_node_service(
                        name=f"tf-{key}-credentials-relay",
                        image=image,
                        command=command,
                        labels=labels,
                        capabilities=["CAP_NET_ADMIN"],
                        # Running once it answers: a job's hosts never ask a relay that does not.
                        # A bare interpreter: the check runs on every node every few seconds.
                        health_check=["python3", "-S", "-c", _ANSWERS, address, str(port)],
                    )
                    break
                except EngineError:
                    # A service of the same name still being removed.
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.5)
        self._wait_relay_running(service)
        return port

    def _wait_relay_running(self, service: str) -> None:
        deadline = time.monotonic() + _RELAY_SECONDS
        while True:
            nodes = {n.name for n in self.nodes()}
            running = {
                str(t.get("NodeID"))
                for t in self.docker.tasks([service])
                if (t.get("Status") or {}).get("State") == "running"
                and (t.get("DesiredState") == "running")
            }
            if nodes <= running:
                return
            if time.monotonic() >= deadline:
                failed = [
                    (t.get("Status") or {}).get("Err") or (t.get("Status") or {}).get("State")
                    for t in self.docker.tasks([service])
                    if str(t.get("NodeID")) in nodes - running
                ]
                why = failed[-1] if failed else "not placed"
                raise EngineError(
                    f"The credentials relay does not run on {len(nodes - running)} of "
                    f"{len(nodes)} nodes after {_RELAY_SECONDS:g} s: {why}"
                )
            time.sleep(0.5)

    def run_task(
        self,
        task: AgentTask,
        timeout: float,
        should_stop: Callable[[], bool] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> TaskResult:
        labels = {**self._labels(task.job), ROLE_LABEL: "agent"}
        service = self.docker.create_service(
            name=self._name(task.job, f"{task.name}-{secrets.token_hex(2)}"),
            image=task.image,
            entrypoint=task.command[:1],
            command=task.command[1:],
            env=task.env,
            labels=labels,
            mounts=task.mounts,
            node=task.node,
            dns=self.dns,
        )
        followed = threading.Event()
        if on_line is not None:
            threading.Thread(
                target=self._follow_task,
                args=(service, on_line, followed),
                name="agent-log",
                daemon=True,
            ).start()
        try:
            deadline = time.monotonic() + timeout
            while True:
                latest = _first(self.docker.tasks([service])).get(service)
                status = (latest or {}).get("Status") or {}
                state = status.get("State", "new")
                if state in _ENDED:
                    break
                if should_stop is not None and should_stop():
                    raise StorageCancelled()
                if time.monotonic() >= deadline:
                    raise EngineError(
                        f"The trainforge agent {task.name} did not finish within {timeout:g} s "
                        f"(its task is {state})."
                    )
                time.sleep(_POLL_SECONDS)
            code = (status.get("ContainerStatus") or {}).get("ExitCode")
            output = "\n".join(line.text for line in self.docker.service_logs(service, 0, False))
            if code is None:
                raise EngineError(
                    f"The trainforge agent {task.name} could not run: "
                    f"{status.get('Err') or status.get('Message') or state}"
                )
            return TaskResult(int(code), output)
        finally:
            followed.set()
            with contextlib.suppress(EngineError):
                self.docker.remove_service(service)

"""The contract between the runtime and whatever runs a job's containers: the local Docker engine
(one machine), a cluster engine (hosts across machines), or the scripted fake the lifecycle's
unit tests use. The runtime speaks only these types; an engine module is the only place that
imports its SDK and knows its words (network modes, labels, exit-code conventions).

The unit is a job's whole host group. Every engine keeps these promises:

- ``start`` creates the job's network, where the hosts reach each other as ``algo-1..N``, and
  every host's container; it returns once all of them run. It is all or nothing: when it
  raises, nothing of the job is left running.
- ``states`` finds a job's hosts again, also from another process after a restart; a host that
  is absent from the answer is lost (its container or its machine is gone).
- ``wait`` blocks until a host exits that had not exited at the previous call, or the timeout
  passes, and returns the states of every host, as ``states`` does.
- ``terminate`` sends SIGTERM to every host still running and ``kill`` sends SIGKILL; both are
  idempotent and silent when a host is already gone. The caller keeps the grace period between
  them (and its deadline survives the caller's restart); an engine that enforces the grace
  itself may do so too.
- ``logs`` yields every line a host wrote, with the engine's timestamp, from ``since_ns`` on
  (exclusive), and follows the host until it exits when asked to. Lines are never lost to the
  engine's own log rotation: the engine sets its containers' log options itself.
- ``remove`` removes everything the engine made for the job (containers, network, volumes);
  idempotent.
- Failures raise ``EngineError`` (the engine is unreachable or refused), ``ImageNotFound`` or
  ``ContainerStartError`` (the image's fault).

Optional abilities raise ``NotImplementedError`` rather than being detected by type.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from trainforge.domain.allocation import Node
from trainforge.domain.images import ImageSource, RegistryAuth

# Where and with which login to pull an image; asked only when a pull is needed (an ECR login
# is a network call a present image does not need).
SourceOf = Callable[[], ImageSource]


@dataclass(frozen=True)
class ImageInfo:
    id: str
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    env: Mapping[str, str]


@dataclass(frozen=True)
class ImageContents:
    entries_under: tuple[str, ...]
    on_path: bool


class MountKind(enum.StrEnum):
    BIND = "bind"  # a path of the machine that runs the container
    VOLUME = "volume"  # a named volume, made on the machine that runs the container


@dataclass(frozen=True)
class Mount:
    source: str
    target: PurePosixPath
    read_only: bool
    kind: MountKind = MountKind.BIND


@dataclass(frozen=True)
class SecretFile:
    """A file of the server's machine that every host of a job reads at ``target``, read-only,
    wherever the host runs; what the engine shows of its containers (inspect) never holds its
    content."""

    source: Path
    target: PurePosixPath


@dataclass(frozen=True)
class Limits:
    cpus: float | None = None
    memory_bytes: int | None = None
    shm_bytes: int | None = None
    gpu_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostContainer:
    """One host of a job. ``entrypoint``/``command`` None means "keep the image's", exactly as
    an absent ``--entrypoint`` or absent trailing arguments do for ``docker run``; an empty
    ``command`` with an ``entrypoint`` means no arguments at all. ``stream`` is the host's log
    stream, kept with the container so a restarted worker finds it. ``node`` is where the
    allocation placed the host."""

    host: str
    image: str
    entrypoint: tuple[str, ...] | None
    command: tuple[str, ...] | None
    env: Mapping[str, str]
    mounts: tuple[Mount, ...]
    limits: Limits
    stream: str
    node: str | None = None


@dataclass(frozen=True)
class GroupSpec:
    job: str
    hosts: tuple[HostContainer, ...]
    # EnableNetworkIsolation: the hosts reach each other and nothing else.
    isolated: bool
    stop_grace_seconds: float
    # The login the hosts' image is pulled with on machines other than the server's (a cluster
    # engine's nodes pull it themselves); None: the engine's own credentials.
    registry_auth: RegistryAuth | None = None
    secret_files: tuple[SecretFile, ...] = ()


@dataclass(frozen=True)
class HostState:
    host: str
    stream: str
    running: bool
    exit_code: int | None = None
    # The signal the host's process died of, where the engine's exit status says so (Docker
    # reports 128 + N): the runtime reads this, never an engine's exit-code convention.
    signal: int | None = None
    oom_killed: bool = False
    # Epoch seconds at which the host's container exited, as the engine recorded it.
    finished_at: float | None = None
    error: str = ""


def signal_of_exit_code(code: int | None) -> int | None:
    """The signal of a ``128 + N`` exit status, as Docker and a POSIX shell report a process
    killed by signal N; None for an ordinary exit."""
    if code is None or not 128 < code < 128 + 65:
        return None
    return code - 128


@dataclass(frozen=True)
class HostUsage:
    """A host's use of its machine at one moment: the CPU time its container used since it
    started (cumulative, so two samples give a rate) and its memory against its limit."""

    at: float  # epoch seconds
    cpu_seconds: float
    memory_bytes: int
    memory_limit_bytes: int


@dataclass(frozen=True)
class LogLine:
    ts_ns: int
    text: str


@dataclass(frozen=True)
class TaskResult:
    """What an agent task printed and how it ended (engines that run agents next to hosts)."""

    exit_code: int
    output: str


@dataclass(frozen=True)
class AgentTask:
    """A short-lived container of trainforge's own agent image, placed on ``node``, doing
    ``name`` (``prepare-algo-1``, say) for ``job``."""

    job: str
    name: str
    node: str | None
    image: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    mounts: tuple[Mount, ...]


class Engine(Protocol):
    # Hosts may land on other machines than the server's: their /opt/ml cannot be a directory
    # of the server's disk, so data moves through agents next to them.
    spans_machines: bool

    def describe(self) -> str:
        """Where the engine is, for error messages ("Docker at unix:///var/run/docker.sock")."""
        ...

    def nodes(self) -> list[Node]:
        """The machines hosts can run on, with their full capacity."""
        ...

    def image(self, ref: str, source: SourceOf | None = None) -> ImageInfo:
        """The image's config; pulls it when absent, from ``source()`` (the same image, maybe
        at another registry, with a login) or else ``ref`` with the engine's own credentials.
        Raises ImageNotFound with the registry's answer when the pull fails."""
        ...

    def probe_image(self, ref: str, list_dir: str, executable: str) -> ImageContents:
        """What the image's own filesystem holds (no mounts): the first names under
        ``list_dir``, and whether ``executable`` is an executable on the image's PATH."""
        ...

    def start(self, group: GroupSpec) -> None: ...

    def states(self, job: str) -> dict[str, HostState]: ...

    def wait(self, job: str, timeout: float) -> dict[str, HostState]: ...

    def terminate(self, job: str) -> None: ...

    def kill(self, job: str) -> None: ...

    def logs(self, job: str, host: str, since_ns: int, follow: bool) -> Iterator[LogLine]: ...

    def remove(self, job: str) -> None: ...

    def container_ids(self, job: str) -> dict[str, str]:
        """The id of each running host's container, as its machine knows it (its cgroup is
        named by it)."""
        ...

    def usage(self, job: str) -> dict[str, HostUsage]:
        """What each running host of ``job`` uses now (hosts that ended are left out). Raises
        ``NotImplementedError`` when the engine cannot see its hosts' use."""
        ...

    def hold_address(self, address: str, image: str) -> None:
        """Have the machine that runs the containers hold ``address`` on its loopback interface,
        from a short-lived container of ``image`` (trainforge's agent image) on the machine's
        network with CAP_NET_ADMIN. Raises ``EngineError`` saying why it could not."""
        ...

    def relay_credentials(self, address: str, port: int, upstream: str, image: str) -> int:
        """Engines with ``spans_machines``: have every node answer credential requests at
        ``address:port`` (held on its loopback interface) by asking ``upstream`` (the server's
        credentials endpoint, where the nodes reach it), with a long-lived container of
        ``image`` on each node; returns the port (port 0: one the engine picks, the same for
        this server every time) once every node runs its relay. Idempotent. Raises
        ``EngineError`` saying why it could not."""
        ...

    def run_task(
        self,
        task: AgentTask,
        timeout: float,
        should_stop: Callable[[], bool] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> TaskResult:
        """Run an agent task to its end (engines with ``spans_machines``); removed early, and
        ``StorageCancelled`` raised, once ``should_stop()`` is true. ``on_line`` is given each
        line the task prints, as it prints it."""
        ...

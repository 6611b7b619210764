"""The contract between the runtime and whatever runs containers (Docker now, a cluster engine
later). The runtime speaks only these types; an engine module is the only place that imports its
SDK.

Rules every engine keeps:

- ``launch`` returns as soon as the container is started; it never waits for it to finish.
- ``wait`` blocks until the container exits (or the timeout passes) and gives its exit code.
- ``signal`` and ``remove`` are idempotent and silent when the container is already gone.
- ``logs`` yields every output line with the engine's own timestamp, from ``since_ns`` on, and
  follows the container until it exits when asked to; a worker that restarts resumes from the
  last timestamp it stored, so nothing is lost or repeated.
- ``find`` lists the containers carrying given labels, so a new worker can take over a job whose
  worker died.
- Optional abilities are flags (``supports_gpus``), not subclasses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol


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


@dataclass(frozen=True)
class BindMount:
    source: Path
    target: PurePosixPath
    read_only: bool


@dataclass(frozen=True)
class ContainerSpec:
    """One container. ``entrypoint``/``command`` None means "keep the image's", exactly as an
    absent ``--entrypoint`` or absent trailing arguments do for ``docker run``; an empty
    ``command`` with an ``entrypoint`` means no arguments at all."""

    name: str
    image: str
    entrypoint: tuple[str, ...] | None
    command: tuple[str, ...] | None
    env: Mapping[str, str]
    hostname: str
    mounts: Sequence[BindMount]
    labels: Mapping[str, str]
    network: str | None = None
    network_aliases: Sequence[str] = ()
    cpus: float | None = None
    memory_bytes: int | None = None
    shm_bytes: int | None = None
    gpus: int = 0
    gpu_ids: tuple[str, ...] = ()
    extra_hosts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogLine:
    ts_ns: int
    text: str


@dataclass(frozen=True)
class ContainerState:
    running: bool
    exit_code: int | None
    oom_killed: bool
    error: str


@dataclass(frozen=True)
class FoundContainer:
    id: str
    labels: Mapping[str, str]


class Engine(Protocol):
    supports_gpus: bool

    def describe(self) -> str:
        """Where the engine is, for error messages ("Docker at unix:///var/run/docker.sock")."""
        ...

    def image(self, ref: str) -> ImageInfo:
        """The image's config; pulls it when absent. Raises ImageNotFound."""
        ...

    def probe_image(self, ref: str, list_dir: str, executable: str) -> ImageContents:
        """What the image's own filesystem holds (no mounts): the first names under
        ``list_dir``, and whether ``executable`` is an executable on the image's PATH."""
        ...

    def create_network(self, name: str, labels: Mapping[str, str], internal: bool = False) -> None:
        """A private network for a job's hosts; ``internal`` cuts it off from the outside
        (EnableNetworkIsolation)."""
        ...

    def remove_networks(self, labels: Mapping[str, str]) -> None:
        """Remove every network carrying these labels (idempotent)."""
        ...

    def launch(self, spec: ContainerSpec) -> str: ...

    def state(self, container_id: str) -> ContainerState | None:
        """None when the container does not exist (any more)."""
        ...

    def wait(self, container_id: str, timeout: float | None = None) -> int | None: ...

    def signal(self, container_id: str, signal: str) -> None: ...

    def logs(self, container_id: str, since_ns: int, follow: bool) -> Iterator[LogLine]: ...

    def remove(self, container_id: str) -> None: ...

    def find(self, labels: Mapping[str, str]) -> list[FoundContainer]: ...

    def gpu_count(self) -> int: ...

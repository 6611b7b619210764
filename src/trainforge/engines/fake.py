"""A scripted engine that keeps the contract of ``engines.base`` in memory, so the lifecycle's
rules (stop, max runtime, a failing or lost peer, upload failures, admission, recovery) have
fast in-process tests beside the real-container ones. Each host follows a ``HostScript``: the
lines it prints, when and how it exits, what it does on SIGTERM, files it leaves in its /opt/ml
(written into the bind mount the data plane gave it), or that its machine is lost.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trainforge.domain.allocation import Node
from trainforge.engines.base import (
    AgentTask,
    GroupSpec,
    HostContainer,
    HostState,
    HostUsage,
    ImageContents,
    ImageInfo,
    LogLine,
    SourceOf,
    TaskResult,
    signal_of_exit_code,
)
from trainforge.errors import EngineError, ImageNotFound

_OPT_ML = "/opt/ml"


@dataclass(frozen=True)
class HostScript:
    lines: tuple[str, ...] = ()
    exit_code: int = 0
    runs_for: float = 0.0  # seconds until it exits by itself; math.inf: until signalled
    oom: bool = False
    term_exit: int | None = 143  # its exit code on SIGTERM; None: it ignores SIGTERM
    term_after: float = 0.0  # seconds from SIGTERM to that exit
    lost_after: float | None = None  # its machine goes away this long after the start
    files: Mapping[str, str] = field(default_factory=dict)  # paths under /opt/ml, at exit
    cpus_busy: float = 1.0  # CPUs it keeps busy while it runs
    memory_bytes: int = 1 << 30


@dataclass
class _Host:
    spec: HostContainer
    script: HostScript
    started: float
    ends_at: float
    exit_code: int
    oom: bool = False
    finished: bool = False
    finished_wall: float | None = None
    lost: bool = False
    started_ns: int = field(default_factory=time.time_ns)


@dataclass
class _Job:
    group: GroupSpec
    hosts: dict[str, _Host]
    seen_exits: set[str] = field(default_factory=set)


Scripts = Mapping[str, HostScript] | Callable[[str, str], HostScript]


class FakeEngine:
    spans_machines = False

    def __init__(
        self,
        scripts: Scripts | None = None,
        nodes: list[Node] | None = None,
        missing_images: frozenset[str] = frozenset(),
        start_error: Exception | None = None,
    ) -> None:
        self.scripts = scripts or {}
        self._nodes = nodes or [Node("local", 64.0, 1 << 20)]
        self.missing_images = missing_images
        self.start_error = start_error
        self.jobs: dict[str, _Job] = {}
        self.calls: list[tuple[float, str, str]] = []
        self.unreachable_until = 0.0
        self._cond = threading.Condition()

    # -- scripting helpers --------------------------------------------------------------------

    def script(self, job: str, host: str) -> HostScript:
        if callable(self.scripts):
            return self.scripts(job, host)
        return self.scripts.get(host, HostScript())

    def go_away(self, seconds: float) -> None:
        """The engine stops answering for a while (a daemon restarting)."""
        self.unreachable_until = time.monotonic() + seconds

    def called(self, what: str) -> list[float]:
        return [at for at, name, _ in self.calls if name == what]

    def _check(self) -> None:
        if time.monotonic() < self.unreachable_until:
            raise EngineError("Cannot reach the fake engine")

    # -- the contract -------------------------------------------------------------------------

    def describe(self) -> str:
        return "the fake engine"

    def nodes(self) -> list[Node]:
        return list(self._nodes)

    def image(self, ref: str, source: SourceOf | None = None) -> ImageInfo:
        self._check()
        if ref in self.missing_images:
            raise ImageNotFound(f"The training image {ref} is not on this machine.")
        return ImageInfo(id=f"sha256:{ref}", entrypoint=None, cmd=None, env={})

    def probe_image(self, ref: str, list_dir: str, executable: str) -> ImageContents:
        return ImageContents(entries_under=(), on_path=True)

    def start(self, group: GroupSpec) -> None:
        self._check()
        self.calls.append((time.time(), "start", group.job))
        if self.start_error is not None:
            raise self.start_error
        now = time.monotonic()
        hosts = {}
        for spec in group.hosts:
            script = self.script(group.job, spec.host)
            hosts[spec.host] = _Host(
                spec, script, now, now + script.runs_for, script.exit_code, script.oom
            )
        with self._cond:
            self.jobs[group.job] = _Job(group, hosts)
            self._cond.notify_all()

    def _advance(self, job: _Job) -> None:
        now = time.monotonic()
        for host in job.hosts.values():
            lost_at = host.started + host.script.lost_after if host.script.lost_after else None
            if lost_at is not None and now >= lost_at and not host.finished:
                host.lost = True
            if not host.finished and not host.lost and now >= host.ends_at:
                host.finished = True
                host.finished_wall = time.time() - (now - host.ends_at)
                self._write_files(host)

    @staticmethod
    def _write_files(host: _Host) -> None:
        root = next((m.source for m in host.spec.mounts if str(m.target) == _OPT_ML), None)
        if root is None:
            return
        for relative, text in host.script.files.items():
            path = Path(root) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def _state(self, host: _Host) -> HostState:
        if not host.finished:
            return HostState(host.spec.host, host.spec.stream, running=True)
        return HostState(
            host.spec.host,
            host.spec.stream,
            running=False,
            exit_code=137 if host.oom else host.exit_code,
            signal=signal_of_exit_code(137 if host.oom else host.exit_code),
            oom_killed=host.oom,
            finished_at=host.finished_wall,
        )

    def states(self, job: str) -> dict[str, HostState]:
        self._check()
        with self._cond:
            found = self.jobs.get(job)
            if found is None:
                return {}
            self._advance(found)
            return {n: self._state(h) for n, h in found.hosts.items() if not h.lost}

    def wait(self, job: str, timeout: float) -> dict[str, HostState]:
        self._check()
        deadline = time.monotonic() + timeout
        with self._cond:
            found = self.jobs.get(job)
            while found is not None:
                self._advance(found)
                ended = {n for n, h in found.hosts.items() if h.finished or h.lost}
                if ended - found.seen_exits:
                    found.seen_exits |= ended
                    break
                now = time.monotonic()
                if now >= deadline:
                    break
                upcoming = [
                    h.ends_at
                    for h in found.hosts.values()
                    if not h.finished and not h.lost and h.ends_at > now
                ]
                self._cond.wait(min([deadline, *upcoming]) - now)
        return self.states(job)

    def _signal(self, job: str, what: str) -> None:
        self._check()
        self.calls.append((time.time(), what, job))
        with self._cond:
            found = self.jobs.get(job)
            if found is None:
                return
            now = time.monotonic()
            self._advance(found)
            for host in found.hosts.values():
                if host.finished or host.lost:
                    continue
                if what == "kill":
                    host.ends_at, host.exit_code = now, 137
                elif host.script.term_exit is not None:
                    ends = now + host.script.term_after
                    if ends < host.ends_at:
                        host.ends_at, host.exit_code = ends, host.script.term_exit
            self._advance(found)
            self._cond.notify_all()

    def terminate(self, job: str) -> None:
        self._signal(job, "terminate")

    def kill(self, job: str) -> None:
        self._signal(job, "kill")

    def logs(self, job: str, host: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        self._check()
        with self._cond:
            found = self.jobs.get(job)
            target = found.hosts.get(host) if found is not None else None
        if target is None:
            return iter(())
        base = target.started_ns
        lines = [
            LogLine(base + i + 1, text)
            for i, text in enumerate(target.script.lines)
            if base + i + 1 > since_ns
        ]
        return iter(lines)

    def container_ids(self, job: str) -> dict[str, str]:
        with self._cond:
            found = self.jobs.get(job)
            hosts = list(found.hosts) if found is not None else []
        return {host: f"fake-{job}-{host}" for host in hosts}

    def usage(self, job: str) -> dict[str, HostUsage]:
        self._check()
        now = time.time()
        with self._cond:
            found = self.jobs.get(job)
            hosts = list(found.hosts.items()) if found is not None else []
        return {
            name: HostUsage(
                at=now,
                cpu_seconds=(now - host.started_ns / 1e9) * host.script.cpus_busy,
                memory_bytes=host.script.memory_bytes,
                memory_limit_bytes=host.spec.limits.memory_bytes or 4 << 30,
            )
            for name, host in hosts
            if not host.finished and not host.lost
        }

    def remove(self, job: str) -> None:
        self.calls.append((time.time(), "remove", job))
        with self._cond:
            self.jobs.pop(job, None)

    def hold_address(self, address: str, image: str) -> None:
        raise NotImplementedError("the fake engine runs no containers")

    def relay_credentials(self, address: str, port: int, upstream: str, image: str) -> int:
        raise NotImplementedError("the fake engine runs no containers")

    def run_task(
        self,
        task: AgentTask,
        timeout: float,
        should_stop: Callable[[], bool] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> TaskResult:
        raise NotImplementedError("the fake engine runs no agents")


def runs_until_signalled(**changes: object) -> HostScript:
    values: dict[str, object] = {"runs_for": math.inf}
    values.update(changes)
    return HostScript(**values)  # type: ignore[arg-type]

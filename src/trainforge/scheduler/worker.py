"""Runs one claimed job: turns the runtime's phases into status transitions, stores its log
lines, keeps its lease alive, and records the outcome. Used by ``trainforge run`` (one job, in
the foreground) and by the server's scheduler (many jobs, each on its own thread).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trainforge.domain import contract
from trainforge.domain.records import ContainerRef, TrainingJob
from trainforge.domain.status import (
    MESSAGES,
    RUNNING_SECONDARY,
    SecondaryStatus,
    TransitionNotAllowed,
)
from trainforge.engines.base import LogLine
from trainforge.runtime.execute import (
    JobRunner,
    Outcome,
    OutcomeKind,
    Phase,
    RunningContainer,
)
from trainforge.runtime.jobspec import JobSpec
from trainforge.store.jobs import JobStore
from trainforge.store.logs import LogStore

# CloudWatch Logs caps an event at 256 KiB including 26 bytes of overhead.
MAX_EVENT_CHARS = 256 * 1024 - 26

Echo = Callable[[str, str], None]
"""(host, line) → shown to a person as the line arrives (``trainforge run``)."""

_RUNNING = RUNNING_SECONDARY
_PHASES = {
    Phase.DOWNLOADING_DATA: (SecondaryStatus.DOWNLOADING, MESSAGES["downloading_data"]),
    Phase.DOWNLOADING_IMAGE: (SecondaryStatus.DOWNLOADING, MESSAGES["downloading_image"]),
    Phase.TRAINING: (SecondaryStatus.TRAINING, MESSAGES["training"]),
    Phase.UPLOADING: (SecondaryStatus.UPLOADING, MESSAGES["uploading"]),
    Phase.STOPPING: (SecondaryStatus.STOPPING, MESSAGES["stopping"]),
    Phase.MAX_RUNTIME: (SecondaryStatus.STOPPING, MESSAGES["stopping"]),
}


def cloudwatch_message(text: str) -> list[str]:
    """A container line as SageMaker stores it: tabs as ``#011`` (syslog escaping, spec §11),
    lines longer than an event cut into several events."""
    text = text.replace("\t", "#011").rstrip("\r")
    if len(text) <= MAX_EVENT_CHARS:
        return [text]
    return [text[i : i + MAX_EVENT_CHARS] for i in range(0, len(text), MAX_EVENT_CHARS)]


class JobReporter:
    """The runtime's ``Reporter`` for one job, backed by the store."""

    def __init__(self, jobs: JobStore, logs: LogStore, job: str, echo: Echo | None = None) -> None:
        self.jobs = jobs
        self.logs = logs
        self.job = job
        self.echo = echo
        self._streams: dict[str, int] = {}
        self._pending_warnings: list[str] = []
        self._lock = threading.Lock()

    def phase(self, phase: Phase) -> float:
        status, message = _PHASES[phase]
        now = time.time()
        only_from: Sequence[SecondaryStatus] = _RUNNING
        if status is SecondaryStatus.STOPPING:
            only_from = (*_RUNNING, SecondaryStatus.STOPPING)
        moved = self.jobs.transition(self.job, status, message, only_from=only_from, now=now)
        # A move that happened carries this call's time; a refused one (the job is stopping)
        # leaves the job as it was.
        if self.echo is not None and moved.last_modified_time == round(now, 3):
            self.echo("trainforge", f"[trainforge] {moved.secondary_status} - {message}")
        return round(now, 3)

    def stream_opened(self, host: str, stream: str) -> None:
        self.attach_stream(host, stream)

    def container_started(self, host: str, container_id: str, stream: str) -> None:
        self.jobs.save_container(ContainerRef(self.job, host, container_id, stream, 0))

    def attach_stream(self, host: str, stream: str) -> None:
        started_ms = int(stream.rsplit("-", 1)[-1]) * 1000
        stream_id = self.logs.create_stream(contract.LOG_GROUP, stream, started_ms)
        with self._lock:
            self._streams[host] = stream_id
            pending, self._pending_warnings = self._pending_warnings, []
        if pending:
            now_ms = int(time.time() * 1000)
            self.logs.append(stream_id, [(now_ms, w) for w in pending], now_ms)

    def log_lines(self, host: str, lines: list[LogLine], cursor_ns: int) -> None:
        stream_id = self._streams.get(host)
        if stream_id is None:
            return
        now_ms = int(time.time() * 1000)
        events: list[tuple[int, str]] = []
        for line in lines:
            ts_ms = line.ts_ns // 1_000_000 if line.ts_ns else now_ms
            events.extend((ts_ms, part) for part in cloudwatch_message(line.text))
            if self.echo is not None:
                self.echo(host, line.text)
        self.logs.append(stream_id, events, now_ms, cursor=(self.job, host, cursor_ns))

    def warning(self, text: str) -> None:
        line = f"[trainforge] WARNING: {text}"
        if self.echo is not None:
            self.echo("trainforge", line)
        with self._lock:
            stream_id = next(iter(self._streams.values()), None)
            if stream_id is None:
                self._pending_warnings.append(line)
                return
        now_ms = int(time.time() * 1000)
        self.logs.append(stream_id, [(now_ms, line)], now_ms)


def finish(jobs: JobStore, name: str, outcome: Outcome) -> TrainingJob:
    """Record the job's end; the one place an Outcome becomes a terminal status."""
    job = jobs.get(name)
    assert job is not None
    if outcome.kind is OutcomeKind.FAILED:
        return jobs.transition(
            name, SecondaryStatus.FAILED, MESSAGES["failed"], failure_reason=outcome.failure_reason
        )
    if (
        outcome.kind is OutcomeKind.COMPLETED
        and job.secondary_status is not SecondaryStatus.STOPPING
    ):
        return jobs.transition(name, SecondaryStatus.COMPLETED, MESSAGES["completed"])
    # Stopped, or stopped by the max runtime, or completed while a stop was being delivered.
    if job.secondary_status is not SecondaryStatus.STOPPING:
        jobs.transition(name, SecondaryStatus.STOPPING, MESSAGES["stopping"])
    if outcome.kind is OutcomeKind.MAX_RUNTIME:
        return jobs.transition(name, SecondaryStatus.MAX_RUNTIME_EXCEEDED, MESSAGES["max_runtime"])
    return jobs.transition(name, SecondaryStatus.STOPPED, MESSAGES["stopped"])


class StoreStopControl:
    """Polls the store for a stop request, at most every ``interval`` seconds."""

    def __init__(self, jobs: JobStore, name: str, interval: float = 0.25) -> None:
        self.jobs = jobs
        self.name = name
        self.interval = interval
        self._checked = 0.0
        self._requested = False
        self._event = threading.Event()
        self._lock = threading.Lock()

    def request(self) -> None:
        """An in-process stop (Ctrl-C, or the server's own StopTrainingJob): no polling delay."""
        self._event.set()

    def stop_requested(self) -> bool:
        if self._event.is_set() or self._requested:
            return True
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.interval:
                self._checked = now
                self._requested = self.jobs.stop_requested(self.name)
        return self._requested


class LeaseKeeper:
    """Heartbeats the leases of the jobs this worker runs, on a background thread."""

    def __init__(self, jobs: JobStore, owner: str, lease_seconds: float, every: float) -> None:
        self.jobs = jobs
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.every = every
        self._names: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)
        self._thread.start()

    def add(self, name: str) -> None:
        with self._lock:
            self._names.add(name)
        self.jobs.heartbeat(self.owner, [name], self.lease_seconds)

    def discard(self, name: str) -> None:
        with self._lock:
            self._names.discard(name)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                names = list(self._names)
            with contextlib.suppress(Exception):
                self.jobs.heartbeat(self.owner, names, self.lease_seconds)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class JobExecution:
    """Everything needed to run (or resume) one claimed job to its end."""

    jobs: JobStore
    logs: LogStore
    runner: JobRunner
    region: str

    def run(
        self,
        name: str,
        control: StoreStopControl,
        echo: Echo | None = None,
        resources: dict[str, object] | None = None,
        warnings: Sequence[str] = (),
    ) -> TrainingJob:
        job = self.jobs.get(name)
        assert job is not None
        reporter = JobReporter(self.jobs, self.logs, name, echo)
        for warning in warnings:
            reporter.warning(warning)
        if job.is_terminal:
            return job
        if job.stop_requested:
            # Stopped before it started: nothing ran, nothing to collect.
            return finish(self.jobs, name, Outcome(OutcomeKind.STOPPED))
        spec = self.spec(job, resources)
        try:
            self.jobs.transition(
                name,
                SecondaryStatus.STARTING,
                MESSAGES["preparing"],
                only_from=(SecondaryStatus.STARTING, SecondaryStatus.PENDING),
            )
            outcome = self.runner.run(spec, reporter, control)
        except TransitionNotAllowed:
            outcome = Outcome(OutcomeKind.STOPPED)
        except Exception as exc:
            outcome = Outcome(
                OutcomeKind.FAILED,
                f"InternalServerError: trainforge failed running the job: {exc!r}",
            )
        ended = finish(self.jobs, name, outcome)
        self.runner.release(spec)
        return ended

    def resume(
        self,
        name: str,
        control: StoreStopControl,
        running: Sequence[RunningContainer],
        echo: Echo | None = None,
        resources: dict[str, object] | None = None,
    ) -> TrainingJob:
        job = self.jobs.get(name)
        assert job is not None
        reporter = JobReporter(self.jobs, self.logs, name, echo)
        for container in running:
            reporter.attach_stream(container.host, container.stream)
        spec = self.spec(job, resources)
        try:
            outcome = self.runner.resume(
                spec,
                running,
                reporter,
                control,
                job.training_start_time or job.creation_time,
                stopping=job.secondary_status is SecondaryStatus.STOPPING,
            )
        except Exception as exc:
            outcome = Outcome(
                OutcomeKind.FAILED,
                f"InternalServerError: trainforge failed resuming the job: {exc!r}",
            )
        ended = finish(self.jobs, name, outcome)
        self.runner.release(spec)
        return ended

    def spec(self, job: TrainingJob, resources: dict[str, object] | None) -> JobSpec:
        spec = JobSpec.from_request(job.name, job.arn, self.region, job.request)
        if resources:
            spec = dataclasses.replace(spec, resources=dict(resources))
        return spec

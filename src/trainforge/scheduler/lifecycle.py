"""One job's life in a worker, the same for the server's scheduler and for ``trainforge run``:
claim → lease → allocate → execute → finish → release.

- claim: the server claims a queued job (``admit``); ``trainforge run`` creates its job already
  claimed, so no server takes it.
- lease: the claim's lease is renewed by a ``LeaseKeeper`` while the job runs; a job whose lease
  runs out is taken over by another worker (``recover``).
- allocate: nodes and limits for every host, taken in one store transaction with reading what
  all other claimed jobs hold, so workers sharing a home never hand out the same GPU. The server
  claims and allocates together (a job that does not fit stays queued); ``trainforge run`` waits
  for its allocation in Pending.
- execute: ``runtime.execute.JobRunner`` runs (or resumes) the job and returns its outcome; a
  spot interruption or a retried platform fault runs it again on fresh hosts (``attempts``).
- finish: the outcome becomes the job's terminal status (``finish``), waiting out a full disk.
- release: containers, network and trees are removed, and the claim is let go.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

from trainforge.domain.allocation import Allocation, Node
from trainforge.domain.hosts import hosts_of
from trainforge.domain.records import Schedule, TrainingJob
from trainforge.domain.status import (
    MESSAGES,
    SecondaryStatus,
    TransitionNotAllowed,
)
from trainforge.engines.base import Engine
from trainforge.errors import EngineError, JobFailure, ResourceLimitExceeded
from trainforge.runtime.execute import JobRunner, Resume
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.report import Ending, Outcome, OutcomeKind
from trainforge.scheduler.attempts import queue_expiry
from trainforge.scheduler.capacity import plan, refuse_if_never_fits
from trainforge.scheduler.control import StoreStopControl
from trainforge.scheduler.leases import owner_is_dead
from trainforge.scheduler.reporter import Echo, JobReporter, durably, scraper_of
from trainforge.scheduler.restarts import Restarts, settled
from trainforge.store.jobs import JobStore
from trainforge.store.logs import LogStore

log = logging.getLogger("trainforge.scheduler")


def finish(jobs: JobStore, name: str, outcome: Outcome) -> TrainingJob:
    """Record the job's end; the one place an Outcome becomes a terminal status."""
    job = jobs.get(name)
    assert job is not None
    if job.is_terminal:
        return job
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
    if outcome.kind is OutcomeKind.MAX_WAIT:
        return jobs.transition(name, SecondaryStatus.MAX_WAIT_TIME_EXCEEDED, MESSAGES["max_wait"])
    return jobs.transition(name, SecondaryStatus.STOPPED, MESSAGES["stopped"])


def expire_if_waited_too_long(jobs: JobStore, job: TrainingJob, now: float) -> bool:
    """End a job still waiting for capacity past MaxPendingTimeInSeconds or its spot
    MaxWaitTimeInSeconds: Stopping, then Stopped or MaxWaitTimeExceeded. True when it ended."""
    expiry = queue_expiry(job, now)
    if expiry is None:
        return False

    def end() -> None:
        moved = jobs.transition(
            job.name,
            SecondaryStatus.STOPPING,
            MESSAGES["stopping"],
            only_from=(SecondaryStatus.STARTING, SecondaryStatus.PENDING),
        )
        if moved.secondary_status is SecondaryStatus.STOPPING:
            jobs.transition(job.name, expiry.status, expiry.message)

    durably(end, f"job {job.name}'s end")
    return True


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
        with contextlib.suppress(Exception):
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


GONE_REASON = (
    "The trainforge process running this job stopped, and the job's containers are gone "
    "({detail}). Create the job again to rerun it."
)


@dataclass(frozen=True)
class Placement:
    """Where jobs can run: the engine's nodes, and whether each host needs a node of its own."""

    nodes: Callable[[], list[Node]]
    spread: bool


class Lifecycle:
    def __init__(
        self,
        jobs: JobStore,
        logs: LogStore,
        runner: JobRunner,
        engine: Engine,
        placement: Placement,
        owner: str,
        lease_seconds: float,
        heartbeat_seconds: float,
        region: str,
        interruptions_per_hour: float = 0.0,
    ) -> None:
        self.jobs = jobs
        self.logs = logs
        self.runner = runner
        self.engine = engine
        self.placement = placement
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.region = region
        self.interruptions_per_hour = interruptions_per_hour
        self.restarts = Restarts(jobs, runner)
        self.keeper = LeaseKeeper(jobs, owner, lease_seconds, heartbeat_seconds)

    def close(self) -> None:
        self.keeper.close()

    # -- claim and allocate ----------------------------------------------------------------

    def _planner(self, job: TrainingJob) -> Callable[[list[Allocation]], Allocation | None]:
        hosts = hosts_of(job.request)
        nodes = self.placement.nodes()
        return lambda in_use: plan(hosts, nodes, in_use, self.placement.spread)

    def admit(self, job: TrainingJob) -> Allocation | bool | None:
        """The server's claim of a queued job, with its allocation; None when it does not fit
        now (it stays queued), False when another worker took it or it can never fit (it has
        failed then)."""
        result = self.jobs.allocate(
            job.name, self.owner, self.lease_seconds, self._planner(job), claim=True
        )
        if isinstance(result, Allocation):
            self.keeper.add(job.name)
        elif result is None and self._fails_for_capacity(job):
            return False
        return result

    def _fails_for_capacity(self, job: TrainingJob) -> bool:
        """On a cluster, a job its nodes can never hold fails now rather than wait forever (on
        one machine every job fits, capped)."""
        if not self.placement.spread:
            return False
        try:
            refuse_if_never_fits(hosts_of(job.request), self.placement.nodes(), [], spread=True)
        except ResourceLimitExceeded as exc:
            outcome = Outcome.failed(JobFailure.capacity(exc.message))
            durably(partial(finish, self.jobs, job.name, outcome), f"job {job.name}'s end")
            return True
        return False

    def hold(self, name: str) -> None:
        """A job created already claimed by this worker (``trainforge run``)."""
        self.keeper.add(name)

    def wait_for_allocation(
        self, name: str, control: StoreStopControl, poll_seconds: float = 0.5
    ) -> Allocation | None:
        """Allocate a job this worker holds, waiting in Pending while it does not fit; None when
        it was stopped meanwhile, or has failed because the engine cannot say where it can run."""
        job = self.jobs.get(name)
        assert job is not None
        try:
            planner = self._planner(job)
        except EngineError as exc:
            outcome = Outcome.failed(JobFailure.platform(str(exc)))
            self._end(self.spec(job), outcome)
            return None
        pending = False
        while not control.stop_requested():
            if expire_if_waited_too_long(self.jobs, job, time.time()):
                return None
            result = self.jobs.allocate(name, self.owner, self.lease_seconds, planner, claim=False)
            if isinstance(result, Allocation):
                return result
            if result is False or self._fails_for_capacity(job):
                return None
            if not pending:
                self.pending(name)
                pending = True
            control.wait(poll_seconds)
        return None

    def pending(self, name: str) -> None:
        """Waiting for capacity: Pending, once."""
        durably(
            lambda: self.jobs.transition(
                name,
                SecondaryStatus.PENDING,
                MESSAGES["pending"],
                only_from=(SecondaryStatus.STARTING,),
            ),
            f"job {name}'s status",
        )

    # -- execute, finish, release ----------------------------------------------------------

    def spec(self, job: TrainingJob) -> JobSpec:
        return JobSpec.from_request(job.name, job.arn, self.region, job.request)

    def execute(
        self,
        name: str,
        allocation: Allocation | None,
        control: StoreStopControl,
        echo: Echo | None = None,
    ) -> TrainingJob:
        job = self.jobs.get(name)
        assert job is not None
        reporter = JobReporter(self.jobs, self.logs, name, echo, scraper_of(job))
        spec = self.spec(job)
        if job.is_terminal:
            return self._release(spec, job)
        if allocation is None or job.stop_requested:
            # Stopped before it started: nothing ran, nothing to collect.
            return self._end(spec, Outcome(OutcomeKind.STOPPED))
        for warning in allocation.warnings:
            reporter.warning(warning)
        control.arm(job, self.interruptions_per_hour)
        outcome = self._attempt(spec, allocation, reporter, control, first=True)
        return self._end(spec, self._go_on(spec, allocation, reporter, control, outcome))

    def _go_on(
        self,
        spec: JobSpec,
        allocation: Allocation | None,
        reporter: JobReporter,
        control: StoreStopControl,
        outcome: Outcome,
    ) -> Outcome:
        if allocation is None:
            return settled(outcome)
        given = allocation

        def again(attempt: JobSpec) -> Outcome:
            return self._attempt(attempt, given, reporter, control, first=False)

        return self.restarts.go_on(spec, reporter, control, outcome, again)

    def _attempt(
        self,
        spec: JobSpec,
        allocation: Allocation,
        reporter: JobReporter,
        control: StoreStopControl,
        first: bool,
    ) -> Outcome:
        name = spec.name
        try:
            if first:
                durably(
                    lambda: self.jobs.transition(
                        name,
                        SecondaryStatus.STARTING,
                        MESSAGES["preparing"],
                        only_from=(SecondaryStatus.STARTING, SecondaryStatus.PENDING),
                    ),
                    f"job {name}'s status",
                )
            return self.runner.run(spec, allocation, reporter, control)
        except TransitionNotAllowed:
            return Outcome(OutcomeKind.STOPPED)
        except Exception as exc:
            log.exception("job %s: running it failed", name)
            return Outcome.failed(
                JobFailure.platform(f"trainforge failed running the job: {exc!r}")
            )

    def resume(
        self, name: str, schedule: Schedule, control: StoreStopControl, echo: Echo | None = None
    ) -> TrainingJob:
        """Carry on with a job a dead worker left running."""
        job = self.jobs.get(name)
        assert job is not None
        reporter = JobReporter(self.jobs, self.logs, name, echo, scraper_of(job))
        refs = self.jobs.hosts(name)
        for ref in refs:
            reporter.attach_stream(ref.host, ref.stream)
        spec = self.spec(job)
        resume = Resume(
            cursors={ref.host: ref.log_cursor_ns for ref in refs},
            training_start_time=job.training_start_time or job.creation_time,
            ending=Ending(schedule.ending) if schedule.ending else None,
            terminated_at=schedule.terminated_at,
        )
        control.arm(job, self.interruptions_per_hour)
        try:
            if (
                job.secondary_status is SecondaryStatus.INTERRUPTED
                and self._missing_hosts(job, self.engine.states(name)) is not None
            ):
                # Taken over between two attempts (``recover``): the next one starts now.
                outcome = Outcome(OutcomeKind.INTERRUPTED)
            else:
                outcome = self.runner.resume(spec, schedule.allocation, resume, reporter, control)
        except Exception as exc:
            log.exception("job %s: resuming it failed", name)
            outcome = Outcome.failed(
                JobFailure.platform(f"trainforge failed resuming the job: {exc!r}")
            )
        return self._end(spec, self._go_on(spec, schedule.allocation, reporter, control, outcome))

    def _end(self, spec: JobSpec, outcome: Outcome) -> TrainingJob:
        ended = durably(lambda: finish(self.jobs, spec.name, outcome), f"job {spec.name}'s end")
        return self._release(spec, ended)

    def _release(self, spec: JobSpec, ended: TrainingJob) -> TrainingJob:
        # The engine may be restarting: what it cannot remove now it is asked again, for as
        # long as a job waits for an engine that went away.
        deadline = time.monotonic() + self.runner.config.engine_outage_seconds
        while True:
            try:
                self.runner.release(spec)
                break
            except EngineError as exc:
                if time.monotonic() >= deadline:
                    log.warning("job %s: its containers could not be removed: %s", spec.name, exc)
                    break
                time.sleep(1.0)
            except Exception:
                log.exception("job %s: removing its containers and files failed", spec.name)
                break
        self.keeper.discard(spec.name)
        durably(lambda: self.jobs.release(spec.name, self.owner), f"job {spec.name}'s claim")
        return ended

    # -- recovery --------------------------------------------------------------------------

    def recover(self) -> list[Schedule]:
        """Take over every job whose worker is gone; end the ones that cannot be resumed.
        Returns the jobs to resume (already held by this worker)."""
        now = time.time()
        resumable = []
        for schedule in self.jobs.claimed():
            if schedule.lease_owner == self.owner:
                continue
            expired = schedule.lease_expires is None or schedule.lease_expires < now
            if not expired and not owner_is_dead(schedule.lease_owner):
                continue
            try:
                found = self.engine.states(schedule.name)
            except EngineError as exc:
                # The engine is away (restarting?): try again at the next pass.
                log.warning("cannot take over %s yet: %s", schedule.name, exc)
                continue
            # Compare-and-set on the owner we saw: a live worker that just renewed keeps it.
            if not self.jobs.take_over(
                schedule.name, self.owner, self.lease_seconds, schedule.lease_owner
            ):
                continue
            job = self.jobs.get(schedule.name)
            if job is None:
                continue
            if job.is_terminal:
                # Its worker recorded the end, then died before clearing up.
                self._release(self.spec(job), job)
                continue
            problem = self._missing_hosts(job, found)
            # Interrupted with its hosts gone: its worker died between two attempts, and the
            # next attempt starts here.
            if problem is None or job.secondary_status is SecondaryStatus.INTERRUPTED:
                self.keeper.add(job.name)
                resumable.append(schedule)
                continue
            outcome = Outcome.failed(JobFailure.platform(GONE_REASON.format(detail=problem)))
            self._end(self.spec(job), outcome)
        return resumable

    def _missing_hosts(self, job: TrainingJob, found: Mapping[str, object]) -> str | None:
        """Why the job cannot be resumed, or None when every host is there."""
        hosts = hosts_of(job.request).names
        stored = self.jobs.hosts(job.name)
        present = [h for h in hosts if h in found]
        if len(present) == len(hosts):
            return None
        if present:
            missing = len(hosts) - len(present)
            return f"{missing} of {len(hosts)} hosts' containers no longer exist"
        if stored:
            return "the engine no longer has them"
        return "it stopped before any container was started"

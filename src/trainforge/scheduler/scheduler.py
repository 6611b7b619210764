"""The server's scheduler: admits queued jobs by capacity, runs each on its own thread under a
heartbeated lease, delivers stop requests, and takes over jobs whose worker died.

Jobs are admitted first come, first served: a job that does not fit waits (secondary status
Pending) and the jobs behind it wait with it, so a large job is never starved by small ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from trainforge.domain.records import TrainingJob
from trainforge.domain.status import MESSAGES, SecondaryStatus
from trainforge.engines.base import Engine
from trainforge.runtime.execute import Outcome, OutcomeKind
from trainforge.scheduler.capacity import Capacity, allocate, assign_gpus, fits
from trainforge.scheduler.leases import owner_id
from trainforge.scheduler.recovery import Orphan, take_over_orphans
from trainforge.scheduler.worker import JobExecution, LeaseKeeper, StoreStopControl, finish

log = logging.getLogger("trainforge.scheduler")


class Scheduler:
    def __init__(
        self,
        execution: JobExecution,
        engine: Engine,
        capacity: Capacity,
        instance_label: str,
        lease_seconds: float,
        heartbeat_seconds: float,
        max_concurrent_jobs: int = 0,
        tick_seconds: float = 0.5,
    ) -> None:
        self.execution = execution
        self.jobs = execution.jobs
        self.engine = engine
        self.capacity = capacity
        self.instance_label = instance_label
        self.lease_seconds = lease_seconds
        self.max_concurrent_jobs = max_concurrent_jobs
        self.tick_seconds = tick_seconds
        self.owner = owner_id("server")
        self.keeper = LeaseKeeper(self.jobs, self.owner, lease_seconds, heartbeat_seconds)
        self._controls: dict[str, StoreStopControl] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._loop_thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._last_recovery = 0.0

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self._loop_thread.start()

    def close(self) -> None:
        """Stop scheduling. Running jobs keep their containers; their leases lapse and the next
        server takes them over."""
        self._stop.set()
        self._wake.set()
        self._loop_thread.join(timeout=10)
        self.keeper.close()

    def wake(self) -> None:
        self._wake.set()

    def stop_requested(self, name: str) -> None:
        with self._lock:
            control = self._controls.get(name)
        if control is not None:
            control.request()
        self._wake.set()

    @property
    def running(self) -> list[str]:
        with self._lock:
            return list(self._threads)

    # -- loop ----------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.tick_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if time.monotonic() - self._last_recovery >= self.lease_seconds / 2:
                    self.recover()
                self.admit()
            except Exception:
                log.exception("scheduling pass failed")

    def recover(self) -> None:
        self._last_recovery = time.monotonic()
        orphans = take_over_orphans(
            self.jobs,
            self.engine,
            self.owner,
            self.lease_seconds,
            self.instance_label,
            release=lambda job: self.execution.runner.release(self.execution.spec(job, None)),
        )
        for orphan in orphans:
            log.info("resuming %s with its running containers", orphan.name)
            self._start(orphan.name, orphan.resources, orphan)

    def admit(self) -> None:
        queued = self.jobs.queued(limit=200)
        blocked = False
        for schedule in queued:
            job = self.jobs.get(schedule.name)
            if job is None:
                continue
            if job.stop_requested:
                # Stopped while waiting: it ends now, even behind a job that cannot start yet.
                finish(self.jobs, job.name, Outcome(OutcomeKind.STOPPED))
                continue
            if blocked:
                self._pending(job)
                continue
            if self.max_concurrent_jobs and len(self.running) >= self.max_concurrent_jobs:
                self._pending(job)
                blocked = True
                continue
            allocation = allocate(job.request, self.capacity)
            in_use = self.jobs.claimed_resources()
            if not fits(allocation, in_use, self.capacity):
                self._pending(job)
                blocked = True
                continue
            resources = allocation.resources(assign_gpus(allocation, in_use, self.capacity))
            if not self.jobs.claim(job.name, self.owner, self.lease_seconds, resources):
                continue
            self._start(job.name, resources, None, allocation.warnings)

    def _pending(self, job: TrainingJob) -> None:
        """Waiting for capacity: Pending, once (a job already Pending costs no write)."""
        if job.secondary_status is SecondaryStatus.STARTING:
            self.jobs.transition(
                job.name,
                SecondaryStatus.PENDING,
                MESSAGES["pending"],
                only_from=(SecondaryStatus.STARTING,),
            )

    def _start(
        self,
        name: str,
        resources: dict[str, object] | None,
        orphan: Orphan | None,
        warnings: Sequence[str] = (),
    ) -> None:
        control = StoreStopControl(self.jobs, name)
        thread = threading.Thread(
            target=self._run,
            args=(name, control, resources, orphan, warnings),
            name=f"job-{name}",
            daemon=True,
        )
        with self._lock:
            self._controls[name] = control
            self._threads[name] = thread
        self.keeper.add(name)
        thread.start()

    def _run(
        self,
        name: str,
        control: StoreStopControl,
        resources: dict[str, object] | None,
        orphan: Orphan | None,
        warnings: Sequence[str],
    ) -> None:
        try:
            if orphan is not None:
                self.execution.resume(name, control, orphan.containers, resources=resources)
            else:
                self.execution.run(name, control, resources=resources, warnings=warnings)
        except Exception:
            log.exception("job %s: worker failed", name)
        finally:
            self.keeper.discard(name)
            self.jobs.release(name, self.owner)
            with self._lock:
                self._controls.pop(name, None)
                self._threads.pop(name, None)
            self._wake.set()

"""The server's scheduler: admits queued jobs by capacity, runs each on its own thread through
the job lifecycle, delivers stop requests, and takes over jobs whose worker died.

Jobs are admitted first come, first served: a job that does not fit waits (secondary status
Pending) and the jobs behind it wait with it, so a large job is never starved by small ones. A
job that waits past its MaxPendingTimeInSeconds (or a spot job past MaxWaitTimeInSeconds) ends.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial

from trainforge.domain.allocation import Allocation
from trainforge.domain.records import Schedule
from trainforge.errors import EngineError
from trainforge.runtime.report import Outcome, OutcomeKind
from trainforge.scheduler.control import StoreStopControl
from trainforge.scheduler.lifecycle import Lifecycle, expire_if_waited_too_long, finish
from trainforge.scheduler.reporter import durably

log = logging.getLogger("trainforge.scheduler")


class Scheduler:
    def __init__(
        self,
        lifecycle: Lifecycle,
        max_concurrent_jobs: int = 0,
        tick_seconds: float = 0.5,
    ) -> None:
        self.lifecycle = lifecycle
        self.jobs = lifecycle.jobs
        self.max_concurrent_jobs = max_concurrent_jobs
        self.tick_seconds = tick_seconds
        self._controls: dict[str, StoreStopControl] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._loop_thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._last_recovery = 0.0
        self._last_trouble = -60.0

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start scheduling. A first recovery that fails (a full disk, an engine away) does not
        keep the server from serving: the loop tries again."""
        try:
            self.recover()
        except Exception:
            log.exception("taking over the jobs of earlier workers failed; trying again later")
        self._loop_thread.start()

    def close(self) -> None:
        """Stop scheduling. Running jobs keep their containers; their leases lapse and the next
        server takes them over."""
        self._stop.set()
        self._wake.set()
        self._loop_thread.join(timeout=10)
        self.lifecycle.close()

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
                if time.monotonic() - self._last_recovery >= self.lifecycle.lease_seconds / 2:
                    self.recover()
                self.admit()
            except Exception:
                log.exception("scheduling pass failed")

    def recover(self) -> None:
        self._last_recovery = time.monotonic()
        for schedule in self.lifecycle.recover():
            log.info("resuming %s with its running containers", schedule.name)
            self._start(schedule.name, None, schedule)

    def admit(self) -> None:
        blocked = False
        for schedule in self.jobs.queued(limit=200):
            job = self.jobs.get(schedule.name)
            if job is None:
                continue
            if job.stop_requested:
                # Stopped while waiting: it ends now, even behind a job that cannot start yet.
                stopped = Outcome(OutcomeKind.STOPPED)
                durably(partial(finish, self.jobs, job.name, stopped), f"job {job.name}'s end")
                continue
            if expire_if_waited_too_long(self.jobs, job, time.time()):
                # MaxPendingTimeInSeconds (or a spot job's MaxWaitTimeInSeconds) ran out.
                continue
            if blocked or (
                self.max_concurrent_jobs and len(self.running) >= self.max_concurrent_jobs
            ):
                # First come, first served: the jobs behind a waiting one wait too.
                self._pending(job.name, job.secondary_status.value)
                blocked = True
                continue
            try:
                result = self.lifecycle.admit(job)
            except EngineError as exc:
                # The engine cannot say where jobs can run (down, or not a swarm manager): the
                # jobs stay queued until it can.
                self._engine_trouble(exc)
                return
            if result is False:
                continue
            if not isinstance(result, Allocation):
                self._pending(job.name, job.secondary_status.value)
                blocked = True
                continue
            self._start(job.name, result, None)

    def _engine_trouble(self, exc: EngineError) -> None:
        now = time.monotonic()
        if now - self._last_trouble >= 60:
            self._last_trouble = now
            log.warning("queued jobs wait: %s", exc)

    def _pending(self, name: str, secondary: str) -> None:
        if secondary == "Starting":
            self.lifecycle.pending(name)

    def _start(self, name: str, allocation: Allocation | None, orphan: Schedule | None) -> None:
        control = StoreStopControl(self.jobs, name)
        thread = threading.Thread(
            target=self._run,
            args=(name, control, allocation, orphan),
            name=f"job-{name}",
            daemon=True,
        )
        with self._lock:
            self._controls[name] = control
            self._threads[name] = thread
        thread.start()

    def _run(
        self,
        name: str,
        control: StoreStopControl,
        allocation: Allocation | None,
        orphan: Schedule | None,
    ) -> None:
        try:
            if orphan is not None:
                self.lifecycle.resume(name, orphan, control)
            else:
                self.lifecycle.execute(name, allocation, control)
        except Exception:
            log.exception("job %s: worker failed", name)
        finally:
            with self._lock:
                self._controls.pop(name, None)
                self._threads.pop(name, None)
            self._wake.set()

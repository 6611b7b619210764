"""How a worker learns that the job it runs must end early, and why: a stop (StopTrainingJob,
Ctrl-C), a spot interruption (``trainforge interrupt``, or at random when
TRAINFORGE_SPOT_INTERRUPTIONS_PER_HOUR is set), or a spot job's MaxWaitTimeInSeconds running out.

Requests reach the worker through the store, which it polls at most every ``interval`` seconds,
so a server's scheduler and a ``trainforge run`` process sharing a home answer the same request.
This module only answers "why end now?"; it never writes a status.
"""

from __future__ import annotations

import math
import random
import threading
import time

from trainforge.domain.records import TrainingJob
from trainforge.runtime.report import Ending
from trainforge.store.jobs import JobStore


def max_wait_deadline(job: TrainingJob) -> float | None:
    """When a managed spot job's MaxWaitTimeInSeconds (waiting and every attempt together,
    counted from its creation) runs out; None for a job without one."""
    if not job.request.get("EnableManagedSpotTraining"):
        return None
    seconds = (job.request.get("StoppingCondition") or {}).get("MaxWaitTimeInSeconds")
    return job.creation_time + seconds if seconds else None


class StoreStopControl:
    """Polls the store for a stop or an interruption, at most every ``interval`` seconds."""

    def __init__(
        self,
        jobs: JobStore,
        name: str,
        interval: float = 0.25,
        rng: random.Random | None = None,
    ) -> None:
        self.jobs = jobs
        self.name = name
        self.interval = interval
        self._rng = rng or random.Random()
        self._checked = 0.0
        self._requested = False
        self._interrupt = False
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._spot = False
        self._max_wait_at: float | None = None
        self._per_hour = 0.0
        self._random_at = math.inf

    def arm(self, job: TrainingJob, interruptions_per_hour: float = 0.0) -> None:
        """Watch ``job``'s own deadlines, and interrupt it at random when it is a spot job and
        ``interruptions_per_hour`` is set."""
        self._spot = bool(job.request.get("EnableManagedSpotTraining"))
        self._max_wait_at = max_wait_deadline(job)
        self._per_hour = interruptions_per_hour if self._spot else 0.0
        self.next_attempt()

    def next_attempt(self) -> None:
        """A new attempt starts: an interruption asked for before is done with, and the next
        random one is drawn (exponential waits: interruptions at a steady rate)."""
        with self._lock:
            self._interrupt = False
            self._checked = 0.0
        self._random_at = (
            time.time() + self._rng.expovariate(self._per_hour / 3600.0)
            if self._per_hour > 0
            else math.inf
        )

    def request(self) -> None:
        """An in-process stop (Ctrl-C, or the server's own StopTrainingJob): no polling delay."""
        self._event.set()

    def stop_requested(self) -> bool:
        return self.ending() is not None

    def ending(self) -> Ending | None:
        self._poll()
        if self._event.is_set() or self._requested:
            return Ending.STOP
        now = time.time()
        if self._max_wait_at is not None and now >= self._max_wait_at:
            return Ending.MAX_WAIT
        if self._spot and (self._interrupt or now >= self._random_at):
            return Ending.INTERRUPT
        return None

    def _poll(self) -> None:
        if self._event.is_set() or self._requested:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._checked >= self.interval:
                self._checked = now
                stop, interrupt = self.jobs.requests(self.name)
                self._requested = stop
                self._interrupt = self._interrupt or interrupt

    def wait(self, seconds: float) -> None:
        """Sleep, waking early for an in-process stop."""
        self._event.wait(seconds)

"""A job's later attempts, on fresh hosts: after a spot interruption (``Interrupted``, then
``Starting`` again with the checkpoints restored) and after a platform fault RetryStrategy
retries (back to ``Starting``). Between two attempts the last one's containers and trees go and
the request that interrupted it is cleared; the next attempt gets what is left of
MaxRuntimeInSeconds. What to do is decided in ``attempts``; running an attempt is the
lifecycle's (it passes it in). Statuses are written through ``JobStore.transition`` only.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable

from trainforge.domain.records import TrainingJob
from trainforge.domain.status import INTERRUPTIBLE_SECONDARY, MESSAGES, SecondaryStatus
from trainforge.errors import EngineError, JobFailure
from trainforge.runtime.execute import JobRunner
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.report import Ending, Outcome, OutcomeKind
from trainforge.scheduler.attempts import Next, next_step, remaining_runtime, retry_message
from trainforge.scheduler.control import StoreStopControl
from trainforge.scheduler.reporter import JobReporter, durably
from trainforge.store.jobs import JobStore

log = logging.getLogger("trainforge.scheduler")


def settled(outcome: Outcome) -> Outcome:
    """An interruption the job cannot start again after (it is being stopped) ends it Stopped."""
    if outcome.kind is OutcomeKind.INTERRUPTED:
        return Outcome(OutcomeKind.STOPPED, exit_codes=outcome.exit_codes)
    return outcome


class Restarts:
    def __init__(self, jobs: JobStore, runner: JobRunner) -> None:
        self.jobs = jobs
        self.runner = runner

    def go_on(
        self,
        spec: JobSpec,
        reporter: JobReporter,
        control: StoreStopControl,
        outcome: Outcome,
        again: Callable[[JobSpec], Outcome],
    ) -> Outcome:
        """Run the job again on fresh hosts for as long as its attempts end in a spot
        interruption or a platform fault that RetryStrategy retries; the last outcome."""
        while True:
            job = self.jobs.get(spec.name)
            assert job is not None
            step = next_step(job, outcome)
            if step is None:
                return settled(outcome)
            if step is Next.RESTART:
                self._status(
                    reporter,
                    SecondaryStatus.INTERRUPTED,
                    MESSAGES["interrupted"],
                    (*INTERRUPTIBLE_SECONDARY, SecondaryStatus.INTERRUPTED),
                )
            try:
                self._between_attempts(spec)
            except EngineError as exc:
                return Outcome.failed(
                    JobFailure.platform(f"the job's last hosts could not be removed: {exc}")
                )
            control.next_attempt()
            early = control.ending()
            # An interruption drawn now has nothing to interrupt: the next attempt meets it.
            if early is Ending.STOP or early is Ending.MAX_WAIT:
                return Outcome.ended_early(early)
            remaining = remaining_runtime(job, time.time())
            if remaining <= 0:
                return Outcome(OutcomeKind.MAX_RUNTIME)
            if step is Next.RESTART:
                moved = self._status(
                    reporter,
                    SecondaryStatus.STARTING,
                    MESSAGES["preparing"],
                    (SecondaryStatus.INTERRUPTED,),
                )
            else:
                log.info("job %s: retrying after %s", spec.name, outcome.failure_reason)
                moved = self._status(
                    reporter,
                    SecondaryStatus.STARTING,
                    retry_message(job),
                    (
                        SecondaryStatus.DOWNLOADING,
                        SecondaryStatus.TRAINING,
                        SecondaryStatus.UPLOADING,
                    ),
                )
            if moved.secondary_status is not SecondaryStatus.STARTING:
                return Outcome(OutcomeKind.STOPPED)
            attempt = dataclasses.replace(spec, max_runtime_seconds=math.ceil(remaining))
            outcome = again(attempt)

    def _status(
        self,
        reporter: JobReporter,
        status: SecondaryStatus,
        message: str,
        only_from: tuple[SecondaryStatus, ...],
    ) -> TrainingJob:
        """A transition between attempts, shown by ``trainforge run`` as the phases are."""
        name = reporter.job
        before = self.jobs.get(name)
        moved = durably(
            lambda: self.jobs.transition(name, status, message, only_from=only_from),
            f"job {name}'s status",
        )
        changed = before is None or before.transitions != moved.transitions
        if reporter.echo is not None and changed:
            reporter.echo("trainforge", [f"[trainforge] {moved.secondary_status} - {message}"])
        return moved

    def _between_attempts(self, spec: JobSpec) -> None:
        """The last attempt's containers and trees go (its artifacts and checkpoints were
        uploaded as after a stop), and the next attempt's log streams get names of their own:
        a stream is named by the second its hosts start in."""
        deadline = time.monotonic() + self.runner.config.engine_outage_seconds
        while True:
            try:
                self.runner.release_attempt(spec)
                break
            except EngineError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1.0)
        durably(lambda: self.jobs.next_attempt(spec.name), f"job {spec.name}'s attempt")
        opened = [int(ref.stream.rsplit("-", 1)[-1]) for ref in self.jobs.hosts(spec.name)]
        until = time.monotonic() + 2.0  # a clock set back must not hold the job for long
        while opened and int(time.time()) <= max(opened) and time.monotonic() < until:
            time.sleep(0.05)

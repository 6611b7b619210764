"""Whether a job goes on after one attempt ended, and the limits that span every attempt: a spot
interruption starts the job again on fresh hosts; a platform fault (never an algorithm error) is
retried up to ``RetryStrategy.MaximumRetryAttempts`` times, as SageMaker retries its own
internal errors (spec §14); MaxRuntimeInSeconds covers all attempts together; a job that
waited in the queue past MaxPendingTimeInSeconds (or a spot job past MaxWaitTimeInSeconds) is
stopped. Pure decisions on the job record: the lifecycle acts on them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from trainforge.domain.records import TrainingJob
from trainforge.domain.status import MESSAGES, SecondaryStatus
from trainforge.errors import Fault
from trainforge.runtime.report import Outcome, OutcomeKind
from trainforge.scheduler.control import max_wait_deadline

DEFAULT_MAX_RUNTIME = 86400
# A retry leaves one of these for Starting; a spot restart leaves Interrupted, a start Pending.
_RAN = frozenset({SecondaryStatus.DOWNLOADING, SecondaryStatus.TRAINING, SecondaryStatus.UPLOADING})


class Next(enum.Enum):
    RESTART = "restart"  # after a spot interruption
    RETRY = "retry"  # after a platform fault, RetryStrategy allowing


def max_retries(job: TrainingJob) -> int:
    retry = job.request.get("RetryStrategy")
    return retry["MaximumRetryAttempts"] if retry else 0


def retries_used(job: TrainingJob) -> int:
    """How many retries the job has had, read from its transitions (so a worker that takes the
    job over counts the ones its predecessor made)."""
    used = 0
    for before, after in zip(job.transitions, job.transitions[1:], strict=False):
        if after.status is SecondaryStatus.STARTING and before.status in _RAN:
            used += 1
    return used


def next_step(job: TrainingJob, outcome: Outcome) -> Next | None:
    """What follows the attempt that ended with ``outcome``; None: the job ends with it."""
    if job.is_terminal or job.stop_requested or job.secondary_status is SecondaryStatus.STOPPING:
        return None
    if outcome.kind is OutcomeKind.INTERRUPTED:
        return Next.RESTART
    if (
        outcome.kind is OutcomeKind.FAILED
        and outcome.failure is not None
        and outcome.failure.fault is Fault.PLATFORM
        and retries_used(job) < max_retries(job)
    ):
        return Next.RETRY
    return None


def retry_message(job: TrainingJob) -> str:
    attempt = retries_used(job) + 2
    return MESSAGES["retrying"].format(attempt=attempt, of=max_retries(job) + 1)


def remaining_runtime(job: TrainingJob, now: float) -> float:
    """What is left of MaxRuntimeInSeconds, which counts from the training's first start and
    covers every attempt."""
    stopping = job.request.get("StoppingCondition")
    seconds = (stopping or {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
    started = job.training_start_time if job.training_start_time is not None else now
    return float(started + seconds - now)


@dataclass(frozen=True)
class Expiry:
    """A job that waited too long to start: it ends in ``status`` with ``message``."""

    status: SecondaryStatus
    message: str


def queue_expiry(job: TrainingJob, now: float) -> Expiry | None:
    """Whether a job still waiting for capacity has waited too long: past its spot
    MaxWaitTimeInSeconds (it ends MaxWaitTimeExceeded, as SageMaker ends a spot job that never
    launched), or past MaxPendingTimeInSeconds (it ends Stopped, saying why)."""
    deadline = max_wait_deadline(job)
    if deadline is not None and now >= deadline:
        return Expiry(SecondaryStatus.MAX_WAIT_TIME_EXCEEDED, MESSAGES["max_wait"])
    pending = (job.request.get("StoppingCondition") or {}).get("MaxPendingTimeInSeconds")
    if pending and now >= job.creation_time + pending:
        return Expiry(SecondaryStatus.STOPPED, MESSAGES["max_pending"].format(seconds=pending))
    return None

"""Training job statuses, the transitions allowed between them, and how a transition changes a job.

Every status change in trainforge goes through ``store.jobs.JobStore.transition``, which calls
``plan_transition`` here to check the move and compute the new record; nothing else writes a
status. The enums mirror the SageMaker model (``TrainingJobStatus``, ``SecondaryStatus``).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import TYPE_CHECKING

from trainforge.errors import TrainforgeError

if TYPE_CHECKING:
    from trainforge.domain.records import TrainingJob


class TrainingJobStatus(enum.StrEnum):
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    DELETING = "Deleting"


class SecondaryStatus(enum.StrEnum):
    STARTING = "Starting"
    LAUNCHING_ML_INSTANCES = "LaunchingMLInstances"
    PREPARING_TRAINING_STACK = "PreparingTrainingStack"
    DOWNLOADING = "Downloading"
    DOWNLOADING_TRAINING_IMAGE = "DownloadingTrainingImage"
    TRAINING = "Training"
    UPLOADING = "Uploading"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"
    COMPLETED = "Completed"
    FAILED = "Failed"
    INTERRUPTED = "Interrupted"
    MAX_WAIT_TIME_EXCEEDED = "MaxWaitTimeExceeded"
    UPDATING = "Updating"
    RESTARTING = "Restarting"
    PENDING = "Pending"


S = SecondaryStatus
P = TrainingJobStatus

# Messages observed in real jobs (spec §5.4). The Failed and MaxRuntimeExceeded texts are not
# confirmed verbatim; see docs/status.md.
MESSAGES: dict[str, str] = {
    "created": "Starting the training job",
    "preparing": "Preparing the instances for training",
    "pending": "Training job waiting for capacity",
    "downloading_data": "Downloading input data",
    "downloading_image": "Downloading the training image",
    "training": "Training image download completed. Training in progress.",
    "uploading": "Uploading generated training model",
    "completed": "Training job completed",
    "stopping": "Stopping the training job",
    "stopped": "Training job stopped",
    "max_runtime": "Training job runtime exceeded MaxRuntimeInSeconds provided",
    "failed": "Training job failed",
    # Not observed verbatim: the Interrupted text is the model's description of the status; the
    # others say what happened in SageMaker's words (docs/status.md).
    "interrupted": "The job stopped because the managed spot training instances were interrupted.",
    "retrying": "Retrying the training job after an internal error (attempt {attempt} of {of})",
    "max_wait": "Training job exceeded MaxWaitTimeInSeconds provided",
    "max_pending": (
        "Training job stopped: it waited for capacity longer than MaxPendingTimeInSeconds "
        "({seconds} s)"
    ),
}

PRIMARY_OF: dict[SecondaryStatus, TrainingJobStatus] = {
    S.STARTING: P.IN_PROGRESS,
    S.PENDING: P.IN_PROGRESS,
    S.DOWNLOADING: P.IN_PROGRESS,
    S.TRAINING: P.IN_PROGRESS,
    S.UPLOADING: P.IN_PROGRESS,
    S.RESTARTING: P.IN_PROGRESS,
    S.INTERRUPTED: P.IN_PROGRESS,
    S.UPDATING: P.IN_PROGRESS,
    S.LAUNCHING_ML_INSTANCES: P.IN_PROGRESS,
    S.PREPARING_TRAINING_STACK: P.IN_PROGRESS,
    S.DOWNLOADING_TRAINING_IMAGE: P.IN_PROGRESS,
    S.STOPPING: P.STOPPING,
    S.STOPPED: P.STOPPED,
    S.MAX_RUNTIME_EXCEEDED: P.STOPPED,
    S.MAX_WAIT_TIME_EXCEEDED: P.STOPPED,
    S.COMPLETED: P.COMPLETED,
    S.FAILED: P.FAILED,
}

TERMINAL_SECONDARY = frozenset(
    {S.COMPLETED, S.FAILED, S.STOPPED, S.MAX_RUNTIME_EXCEEDED, S.MAX_WAIT_TIME_EXCEEDED}
)
# The secondary statuses a job can be stopped from and a runtime phase can move on from.
RUNNING_SECONDARY = (
    S.STARTING,
    S.PENDING,
    S.DOWNLOADING,
    S.TRAINING,
    S.UPLOADING,
    S.RESTARTING,
    S.INTERRUPTED,
)
# Where a job's containers run: the statuses a spot interruption can hit.
INTERRUPTIBLE_SECONDARY = (S.DOWNLOADING, S.TRAINING)
# Time in these (after the training started) is spent waiting, not running: it is not billed.
_WAITING = frozenset({S.STARTING, S.PENDING, S.INTERRUPTED, S.RESTARTING})
TERMINAL = frozenset({P.COMPLETED, P.FAILED, P.STOPPED})

_ENDINGS = {S.STOPPING, S.FAILED}
ALLOWED: dict[SecondaryStatus, frozenset[SecondaryStatus]] = {
    S.STARTING: frozenset({S.PENDING, S.DOWNLOADING, S.TRAINING, S.RESTARTING} | _ENDINGS),
    S.PENDING: frozenset({S.STARTING} | _ENDINGS),
    # Back to Starting: a RetryStrategy retry (spec §14); Interrupted: a spot interruption.
    S.DOWNLOADING: frozenset({S.TRAINING, S.UPLOADING, S.STARTING, S.INTERRUPTED} | _ENDINGS),
    S.TRAINING: frozenset({S.UPLOADING, S.RESTARTING, S.STARTING, S.INTERRUPTED} | _ENDINGS),
    S.RESTARTING: frozenset({S.STARTING, S.DOWNLOADING, S.TRAINING} | _ENDINGS),
    S.UPLOADING: frozenset({S.COMPLETED, S.STARTING} | _ENDINGS),
    S.INTERRUPTED: frozenset({S.STARTING} | _ENDINGS),
    S.STOPPING: frozenset({S.STOPPED, S.MAX_RUNTIME_EXCEEDED, S.MAX_WAIT_TIME_EXCEEDED, S.FAILED}),
}


class TransitionNotAllowed(TrainforgeError):
    def __init__(self, job: str, current: SecondaryStatus, new: SecondaryStatus) -> None:
        super().__init__(f"training job {job}: {current} -> {new} is not an allowed transition")
        self.current = current
        self.new = new


def can_move(current: SecondaryStatus, new: SecondaryStatus) -> bool:
    return current == new or new in ALLOWED.get(current, frozenset())


def plan_transition(
    job: TrainingJob,
    new: SecondaryStatus,
    message: str,
    now: float,
    failure_reason: str | None = None,
) -> TrainingJob:
    """Return the job as it is after moving to ``new``; raise if the move is not allowed.

    Same status again only updates the open entry's message (SageMaker keeps one entry and shows
    the latest message); a new status closes the open entry and appends one. A terminal entry has
    EndTime == StartTime. TrainingStartTime is the end of Starting, TrainingEndTime the start of
    the terminal entry.
    """
    from trainforge.domain.records import Transition

    current = job.secondary_status
    if not can_move(current, new):
        raise TransitionNotAllowed(job.name, current, new)
    if current == new and current in TERMINAL_SECONDARY:
        return job
    now = round(now, 3)
    transitions = list(job.transitions)
    if current == new and transitions:
        last = transitions[-1]
        transitions[-1] = dataclasses.replace(last, message=message)
    else:
        if transitions and transitions[-1].end_time is None:
            transitions[-1] = dataclasses.replace(transitions[-1], end_time=now)
        end = now if new in TERMINAL_SECONDARY else None
        transitions.append(Transition(new, now, end, message))
    changes: dict[str, object] = {
        "secondary_status": new,
        "status": PRIMARY_OF[new],
        "transitions": transitions,
        "last_modified_time": now,
    }
    leaving_start = current in (S.STARTING, S.PENDING, S.RESTARTING)
    if (
        job.training_start_time is None
        and leaving_start
        and new
        not in (
            S.STARTING,
            S.PENDING,
            S.STOPPING,
            S.FAILED,
        )
    ):
        changes["training_start_time"] = now
    if new in TERMINAL_SECONDARY:
        changes["training_end_time"] = now
    if new == S.FAILED:
        changes["failure_reason"] = (failure_reason or MESSAGES["failed"])[:1024]
    return dataclasses.replace(job, **changes)  # type: ignore[arg-type]


def training_seconds(job: TrainingJob) -> int | None:
    """TrainingTimeInSeconds: whole seconds from start to end, at least 1; None until both."""
    if job.training_start_time is None or job.training_end_time is None:
        return None
    return max(1, math.floor(job.training_end_time - job.training_start_time))


def billable_seconds(job: TrainingJob) -> int | None:
    """BillableTimeInSeconds: the training time less what was spent waiting after the training
    started (interrupted, or starting again on fresh instances); equal to TrainingTimeInSeconds
    for a job that ran in one go. At least 1; None until the job has ended."""
    total = training_seconds(job)
    if total is None or job.training_start_time is None or job.training_end_time is None:
        return None
    start, end = job.training_start_time, job.training_end_time
    waited = 0.0
    for t in job.transitions:
        if t.status in _WAITING and t.start_time >= start:
            waited += min(t.end_time if t.end_time is not None else end, end) - t.start_time
    return max(1, min(total, math.floor(end - start - waited)))

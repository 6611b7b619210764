"""Domain records: a training job as trainforge keeps it.

These are plain dataclasses, not wire dicts: ``mapping`` turns them into API shapes and the store
turns them into rows. The user-facing status lives here; the scheduler's own state (queue, lease,
attempt) is kept apart in ``Schedule``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TypedDict

from trainforge.domain.allocation import Allocation
from trainforge.domain.hosts import hosts_of
from trainforge.domain.request import CreateTrainingJobRequest
from trainforge.domain.status import SecondaryStatus, TrainingJobStatus


@dataclass(frozen=True)
class Transition:
    status: SecondaryStatus
    start_time: float
    end_time: float | None
    message: str


class FinalMetric(TypedDict):
    """One member of FinalMetricDataList: a metric's last value, as Describe returns it."""

    MetricName: str
    Value: float
    Timestamp: float  # epoch seconds, whole


@dataclass(frozen=True)
class TrainingJob:
    name: str
    arn: str
    request: CreateTrainingJobRequest
    status: TrainingJobStatus
    secondary_status: SecondaryStatus
    creation_time: float
    last_modified_time: float
    transitions: list[Transition]
    training_start_time: float | None = None
    training_end_time: float | None = None
    failure_reason: str | None = None
    final_metrics: list[FinalMetric] = field(default_factory=list)
    stop_requested: bool = False

    @property
    def is_terminal(self) -> bool:
        return self.status in (
            TrainingJobStatus.COMPLETED,
            TrainingJobStatus.FAILED,
            TrainingJobStatus.STOPPED,
        )

    @property
    def host_count(self) -> int:
        return len(hosts_of(self.request))


class QueueState(enum.StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    DONE = "done"


@dataclass(frozen=True)
class Schedule:
    """The scheduler's view of a job: never shown to API callers. ``terminated_at`` is when its
    containers got SIGTERM, and ``ending`` why (``runtime.report.Ending``'s values)."""

    name: str
    queue_state: QueueState
    lease_owner: str | None
    lease_expires: float | None
    attempts: int
    allocation: Allocation | None = None
    terminated_at: float | None = None
    ending: str | None = None


@dataclass(frozen=True)
class HostRef:
    """One host's log stream and how far its log has been stored, kept so a new worker carries
    on from there."""

    job: str
    host: str
    stream: str
    log_cursor_ns: int

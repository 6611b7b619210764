"""What the runtime tells its caller while a job runs, and what it returns at the end. The
runtime never writes a status: it reports phases, log lines and the moment it signalled the
containers to a ``Reporter``, and returns an ``Outcome``; the lifecycle turns those into
transitions in the store.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from trainforge.domain.metrics import MetricPoint
from trainforge.engines.base import ImageContents, LogLine
from trainforge.errors import JobFailure


class Phase(enum.Enum):
    DOWNLOADING_DATA = "downloading_data"
    DOWNLOADING_IMAGE = "downloading_image"
    TRAINING = "training"
    STOPPING = "stopping"
    UPLOADING = "uploading"
    INTERRUPTED = "interrupted"


class Ending(enum.StrEnum):
    """Why the containers were signalled before they ended by themselves."""

    STOP = "stop"  # StopTrainingJob, Ctrl-C
    MAX_RUNTIME = "max_runtime"  # StoppingCondition.MaxRuntimeInSeconds
    PEER_FAILED = "peer_failed"  # another host of the job failed or was lost
    INTERRUPT = "interrupt"  # a spot interruption: the job starts again on fresh hosts
    MAX_WAIT = "max_wait"  # StoppingCondition.MaxWaitTimeInSeconds of a spot job


class OutcomeKind(enum.Enum):
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    MAX_RUNTIME = "max_runtime"
    MAX_WAIT = "max_wait"
    INTERRUPTED = "interrupted"  # the attempt ended by a spot interruption; the job goes on


# What a job ended early for becomes.
_EARLY = {
    Ending.MAX_RUNTIME: OutcomeKind.MAX_RUNTIME,
    Ending.MAX_WAIT: OutcomeKind.MAX_WAIT,
    Ending.INTERRUPT: OutcomeKind.INTERRUPTED,
}


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    failure: JobFailure | None = None
    exit_codes: Mapping[str, int] = field(default_factory=dict)

    @property
    def failure_reason(self) -> str | None:
        return self.failure.failure_reason if self.failure is not None else None

    @classmethod
    def failed(cls, failure: JobFailure, exit_codes: Mapping[str, int] | None = None) -> Outcome:
        return cls(OutcomeKind.FAILED, failure, exit_codes or {})

    @classmethod
    def ended_early(cls, ending: Ending | None) -> Outcome:
        """A job stopped before (or without) any container exit worth reporting."""
        return cls(_EARLY.get(ending, OutcomeKind.STOPPED) if ending else OutcomeKind.STOPPED)


class Reporter(Protocol):
    def phase(self, phase: Phase) -> float:
        """Record a phase change; returns the time it was recorded at."""
        ...

    def stream_opened(self, host: str, stream: str) -> None:
        """The host's log stream exists from here on (warnings land in it even if the container
        then fails to start)."""
        ...

    def log_lines(self, host: str, lines: list[LogLine], cursor_ns: int) -> None: ...

    def warning(self, text: str) -> None: ...

    def metrics(self, points: list[MetricPoint]) -> None:
        """Instance metric points sampled while the hosts run."""
        ...

    def terminating(self, ending: Ending, at: float) -> None:
        """The containers were sent SIGTERM at ``at`` (epoch seconds) for ``ending``; kept so a
        worker that takes the job over keeps the same SIGKILL deadline."""
        ...


class StopControl(Protocol):
    def stop_requested(self) -> bool:
        """Whether the job must end early now (``ending`` says why)."""
        ...

    def ending(self) -> Ending | None:
        """Why the job must end early now: a stop, an interruption, the MaxWait deadline; None
        to carry on. (MaxRuntimeInSeconds and a failing peer the runtime sees for itself.)"""
        ...


class ProbeCache(Protocol):
    """Keeps what an image holds by image id, beyond the life of one process."""

    def get(self, image_id: str) -> ImageContents | None: ...

    def put(self, image_id: str, contents: ImageContents) -> None: ...

"""Watching a job's running hosts until every one has ended, and ending them early the way
SageMaker does: on a stop request, at the MaxRuntimeInSeconds (or a spot job's MaxWait)
deadline, on a spot interruption, or when one host fails (or is lost), every host gets SIGTERM,
and SIGKILL once the grace period has passed.

The moment of the SIGTERM is reported (and stored by the caller), so a worker that takes the job
over after a crash keeps the same SIGKILL deadline. An engine that stops answering (a daemon
restarting) is waited for, up to ``outage_seconds``; the hosts that ended meanwhile are then
reported as the engine left them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from trainforge.engines.base import Engine, HostState
from trainforge.errors import EngineError, JobFailure
from trainforge.runtime.report import Ending, Phase, Reporter, StopControl

log = logging.getLogger("trainforge.runtime")
POLL_SECONDS = 0.1


@dataclass
class WatchState:
    """What the watch has done to the job; survives a restart through the store."""

    ending: Ending | None = None
    terminated_at: float | None = None
    killed: bool = False
    # When each host's end (or loss) was first seen, and the engine outages seen (start, end).
    seen_ending: dict[str, float] = field(default_factory=dict)
    outages: list[tuple[float, float]] = field(default_factory=list)


class GroupWatch:
    def __init__(
        self,
        engine: Engine,
        job: str,
        hosts: Sequence[str],
        control: StopControl,
        deadline: float,
        grace_seconds: float,
        reporter: Reporter,
        state: WatchState | None = None,
        outage_seconds: float = 60.0,
    ) -> None:
        self.engine = engine
        self.job = job
        self.hosts = tuple(hosts)
        self.control = control
        self.deadline = deadline
        self.grace_seconds = grace_seconds
        self.reporter = reporter
        self.state = state or WatchState()
        self.outage_seconds = outage_seconds

    def run(self) -> dict[str, HostState]:
        """Block until every host has ended or is lost; their last states (lost hosts absent)."""
        outage_since: float | None = None
        while True:
            try:
                states = self.engine.wait(self.job, POLL_SECONDS)
            except EngineError as exc:
                now = time.time()
                if outage_since is None:
                    outage_since = now
                    log.warning("job %s: the engine is unreachable: %s", self.job, exc)
                if now - outage_since > self.outage_seconds:
                    raise JobFailure.platform(
                        f"The container engine ({self.engine.describe()}) stopped answering "
                        f"for more than {self.outage_seconds:g} s while the job ran: {exc}"
                    ) from exc
                time.sleep(min(1.0, self.outage_seconds / 10))
                continue
            if outage_since is not None:
                self.state.outages.append((outage_since, time.time()))
                outage_since = None
            ended = [h for h in self.hosts if h not in states or not states[h].running]
            now = time.time()
            for host in ended:
                self.state.seen_ending.setdefault(host, now)
            if len(ended) == len(self.hosts):
                return states
            self._act(states)

    def _act(self, states: dict[str, HostState]) -> None:
        state = self.state
        if state.terminated_at is None:
            ending = self._ending(states)
            if ending is not None:
                self.terminate(ending)
        elif not state.killed and time.time() - state.terminated_at >= self.grace_seconds:
            self.engine.kill(self.job)
            state.killed = True

    def _ending(self, states: dict[str, HostState]) -> Ending | None:
        requested = self.control.ending()
        if requested is not None:
            return requested
        if time.time() >= self.deadline:
            return Ending.MAX_RUNTIME
        for host in self.hosts:
            found = states.get(host)
            if found is None or (not found.running and found.exit_code != 0):
                return Ending.PEER_FAILED
        return None

    def terminate(self, ending: Ending) -> None:
        now = time.time()
        self.state.ending = ending
        self.state.terminated_at = now
        if ending is Ending.INTERRUPT:
            self.reporter.phase(Phase.INTERRUPTED)
        elif ending is not Ending.PEER_FAILED:
            self.reporter.phase(Phase.STOPPING)
        # SIGTERM before the record of it: a worker that dies in between leaves a job whose
        # successor sends SIGTERM again and gives the whole grace period, never one killed
        # without a SIGTERM because the record said it had one.
        self.engine.terminate(self.job)
        self.reporter.terminating(ending, now)

    def kill_now(self) -> None:
        """Something of ours broke: the containers must not run on unwatched."""
        self.engine.kill(self.job)
        self.state.killed = True

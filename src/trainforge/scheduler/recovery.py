"""Jobs whose worker died: taken over, and either resumed with the containers they left running
(or left exited), or ended Failed with a reason that says what happened.

A job whose lease expired, or whose owner process on this host is gone, is taken over in one
transaction (so two recovering workers never both take it). The engine is asked for the job's
containers by label; if every host's container is there, the job is resumed from the stored log
cursor; if any is gone, or none was ever launched, the job fails: it is never run twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from trainforge.domain.records import TrainingJob
from trainforge.engines.base import Engine
from trainforge.runtime.execute import Outcome, OutcomeKind, RunningContainer
from trainforge.scheduler.leases import owner_is_dead
from trainforge.scheduler.worker import finish
from trainforge.store.jobs import JobStore

GONE_REASON = (
    "InternalServerError: The trainforge process running this job stopped, and the job's "
    "containers are gone ({detail}). Create the job again to rerun it."
)


@dataclass(frozen=True)
class Orphan:
    name: str
    containers: tuple[RunningContainer, ...]
    resources: dict[str, object] | None


def take_over_orphans(
    jobs: JobStore,
    engine: Engine,
    owner: str,
    lease_seconds: float,
    instance_label: str,
    release: Callable[[TrainingJob], None] = lambda job: None,
) -> list[Orphan]:
    """Claim every job whose worker is gone; end the ones that cannot be resumed. Returns the
    jobs to resume. ``release`` clears an ended job's containers and workspace."""
    now = time.time()
    resumable = []
    candidates = [s for s in jobs.claimed() if s.lease_owner != owner]
    for schedule in candidates:
        expired = schedule.lease_expires is None or schedule.lease_expires < now
        if not expired and not owner_is_dead(schedule.lease_owner):
            continue
        # Compare-and-set on the owner we saw: a live worker that just renewed keeps its job.
        if not jobs.take_over(schedule.name, owner, lease_seconds, schedule.lease_owner):
            continue
        job = jobs.get(schedule.name)
        if job is None:
            continue
        if job.is_terminal:
            # Its worker recorded the end, then died before clearing up.
            release(job)
            jobs.release(job.name, owner)
            continue
        stored = {ref.host: ref for ref in jobs.containers(job.name)}
        found = engine.find({"trainforge.job": job.name, "trainforge.instance": instance_label})
        running = []
        for container in found:
            host = container.labels.get("trainforge.host")
            stream = container.labels.get("trainforge.stream")
            if not host or not stream:
                continue
            ref = stored.get(host)
            cursor = ref.log_cursor_ns if ref and ref.container_id == container.id else 0
            running.append(RunningContainer(host, container.id, stream, cursor))
        if running and len(running) == job.host_count:
            resumable.append(
                Orphan(job.name, tuple(sorted(running, key=lambda c: c.host)), schedule.resources)
            )
            continue
        if running:
            for leftover in running:
                engine.remove(leftover.container_id)
            missing = job.host_count - len(running)
            detail = f"{missing} of {job.host_count} hosts' containers no longer exist"
        elif stored:
            detail = "Docker no longer has them"
        else:
            detail = "it stopped before any container was started"
        ended = finish(
            jobs, job.name, Outcome(OutcomeKind.FAILED, GONE_REASON.format(detail=detail))
        )
        release(ended)
        jobs.release(job.name, owner)
    return resumable

"""Where a job's /opt/ml trees live, and who fills and empties them: the part of the runtime that
sits next to each host's container. ``LocalDataPlane`` is the single-machine case: the trees are
directories under ``$TRAINFORGE_HOME/jobs/<job>/``, filled and collected in this process, and
bind-mounted into the containers. An engine whose hosts run on other machines brings a data
plane whose agents do the same work on those machines.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from trainforge.domain import contract
from trainforge.domain.allocation import Allocation
from trainforge.engines.base import Mount
from trainforge.errors import JobFailure, StorageError
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.staging import Stager
from trainforge.runtime.workspace import Workspace
from trainforge.storage.base import Storage

if TYPE_CHECKING:
    # What works beside running hosts and after them is loaded once they have started (a
    # short job's start does not wait on it).
    from trainforge.runtime.attend import Attendance, LocalAttendance
    from trainforge.runtime.instance_metrics import Sink as MetricSink


@dataclass
class Collected:
    """What collecting a job's artifacts gave: warnings for the job's log, each host's
    ``/opt/ml/output/failure`` text, and the failure of the upload itself, if any."""

    warnings: list[str] = field(default_factory=list)
    failure_texts: dict[str, str | None] = field(default_factory=dict)
    error: JobFailure | None = None


class DataPlane(Protocol):
    def prepare(
        self, spec: JobSpec, allocation: Allocation, should_stop: Callable[[], bool]
    ) -> Mapping[str, tuple[Mount, ...]]:
        """Every host's /opt/ml tree (config files, channels, checkpoints) made ready; returns
        what each host's container mounts. Raises ``JobFailure`` (ClientError for bad input) and
        ``StorageCancelled`` once ``should_stop`` is true."""
        ...

    def attend(
        self, spec: JobSpec, allocation: Allocation | None, metrics: MetricSink
    ) -> Attendance:
        """The hosts have started (or a worker took them over): run what must work beside
        them until they end (``runtime.attend``). Instance metrics sampled there, where the
        engine cannot give them, go to ``metrics``."""
        ...

    def disk_path(self, spec: JobSpec, host: str) -> Path | None:
        """A path on the disk that holds ``host``'s tree, where this process can see it."""
        ...

    def inputs_done(self, spec: JobSpec) -> None:
        """Every container has exited: the staged inputs can go (they are the bulk of a job's
        disk, and a full disk must not wait for the upload)."""
        ...

    def collect(self, spec: JobSpec, allocation: Allocation | None) -> Collected: ...

    def release(self, spec: JobSpec) -> None:
        """Remove whatever is left of the job's trees (after its outcome is recorded)."""
        ...


def prepare_trees(
    stager: Stager, spec: JobSpec, workspace: Workspace, should_stop: Callable[[], bool]
) -> dict[str, tuple[Mount, ...]]:
    """Stage the channels and checkpoints of ``workspace``'s hosts; what each host mounts: its
    tree at /opt/ml, its config files read-only over /opt/ml/input/config, its channels
    (writable where they are its own File-mode copy), its checkpoint directory at
    CheckpointConfig.LocalPath."""
    staged = stager.stage(spec, workspace, should_stop)
    stager.restore_checkpoints(spec, workspace, should_stop)
    mounts: dict[str, tuple[Mount, ...]] = {}
    for hw in workspace.hosts:
        binds = [
            Mount(str(hw.root), contract.OPT_ML, False),
            Mount(str(hw.config_dir), contract.INPUT_CONFIG, True),
            *staged.mounts.get(hw.host.name, []),
        ]
        binds += [Mount(str(here), target, False) for here, target in hw.synced_mounts(spec)]
        mounts[hw.host.name] = tuple(binds)
    return mounts


class LocalDataPlane:
    def __init__(self, jobs_dir: Path, storage: Storage) -> None:
        self.jobs_dir = jobs_dir
        self.storage = storage
        self.stager = Stager(storage)

    def workspace(self, spec: JobSpec) -> Workspace:
        return Workspace.at(self.jobs_dir, spec)

    def prepare(
        self, spec: JobSpec, allocation: Allocation, should_stop: Callable[[], bool]
    ) -> dict[str, tuple[Mount, ...]]:
        workspace = self.workspace(spec)
        try:
            workspace.create(spec)
        except OSError as exc:
            raise JobFailure.platform(f"cannot prepare the job's workspace: {exc}") from exc
        return prepare_trees(self.stager, spec, workspace, should_stop)

    def attend(
        self, spec: JobSpec, allocation: Allocation | None, metrics: MetricSink
    ) -> LocalAttendance:
        # Collecting follows the hosts' end at once: what it needs loads now, while they run.
        import trainforge.runtime.collect  # noqa: F401
        from trainforge.runtime.attend import HostAttendant, LocalAttendance, host_components

        workspace = self.workspace(spec)
        return LocalAttendance(
            [
                HostAttendant(hw.host.name, host_components(spec, workspace, hw, self.storage))
                for hw in workspace.hosts
            ]
        )

    def disk_path(self, spec: JobSpec, host: str) -> Path | None:
        return self.jobs_dir

    def inputs_done(self, spec: JobSpec) -> None:
        shutil.rmtree(self.workspace(spec).channels_dir, ignore_errors=True)

    def collect(self, spec: JobSpec, allocation: Allocation | None) -> Collected:
        from trainforge.runtime.artifacts import read_failure
        from trainforge.runtime.collect import Collector

        workspace = self.workspace(spec)
        collected = Collected(
            failure_texts={hw.host.name: read_failure(hw.output_dir) for hw in workspace.hosts}
        )
        try:
            collected.warnings = Collector(self.storage, spec, workspace).upload()
        except (StorageError, OSError) as exc:
            collected.error = JobFailure.client(
                f"Uploading the model artifacts to {spec.output_prefix} failed: {exc}"
            )
        return collected

    def release(self, spec: JobSpec) -> None:
        self.workspace(spec).remove()

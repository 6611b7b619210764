"""One job, from workspace to outcome: prepare → stage → launch → watch → collect.

The runtime never writes a status: it tells its ``Reporter`` which phase it is in, hands it the
log lines, and returns an ``Outcome``. Stop requests and the MaxRuntimeInSeconds deadline end the
containers the way SageMaker does (SIGTERM to PID 1, the grace period, SIGKILL) and the artifacts
written until then are still collected. A worker that takes over a job whose worker died calls
``resume`` with the containers it found, and the job carries on from there.
"""

from __future__ import annotations

import contextlib
import enum
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from trainforge.domain import contract
from trainforge.engines.base import BindMount, ContainerSpec, Engine, ImageContents, LogLine
from trainforge.errors import (
    ContainerStartError,
    EngineError,
    Fault,
    ImageNotFound,
    JobFailure,
    StorageError,
)
from trainforge.runtime.artifacts import algorithm_failure_reason, read_failure
from trainforge.runtime.collect import Collector
from trainforge.runtime.image_checks import image_warnings
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.logpump import LogPump
from trainforge.runtime.staging import Mount, Stager
from trainforge.runtime.workspace import HostWorkspace, Workspace
from trainforge.storage.base import Storage

_POLL_SECONDS = 0.1
OOM_REASON = (
    "OutOfMemoryError: Please use an instance type with more memory, or reduce the size of job "
    "data processed on an instance."
)


class Phase(enum.Enum):
    DOWNLOADING_DATA = "downloading_data"
    DOWNLOADING_IMAGE = "downloading_image"
    TRAINING = "training"
    STOPPING = "stopping"
    MAX_RUNTIME = "max_runtime"
    UPLOADING = "uploading"


class OutcomeKind(enum.Enum):
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    MAX_RUNTIME = "max_runtime"


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    failure_reason: str | None = None
    exit_codes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunningContainer:
    host: str
    container_id: str
    stream: str
    log_cursor_ns: int = 0


class Reporter(Protocol):
    def phase(self, phase: Phase) -> float:
        """Record a phase change; returns the time it was recorded at."""
        ...

    def stream_opened(self, host: str, stream: str) -> None:
        """The host's log stream exists from here on (warnings land in it even if the container
        then fails to start)."""
        ...

    def container_started(self, host: str, container_id: str, stream: str) -> None: ...

    def log_lines(self, host: str, lines: list[LogLine], cursor_ns: int) -> None: ...

    def warning(self, text: str) -> None: ...


class StopControl(Protocol):
    def stop_requested(self) -> bool: ...


class ProbeCache(Protocol):
    """Keeps what an image holds by image id, beyond the life of one process."""

    def get(self, image_id: str) -> ImageContents | None: ...

    def put(self, image_id: str, contents: ImageContents) -> None: ...


@dataclass(frozen=True)
class RuntimeConfig:
    jobs_dir: Path
    stop_grace_seconds: float
    instance_label: str
    keep_containers: bool = False
    keep_workspaces: bool = False
    log_flush_seconds: float = 0.2
    container_env: Callable[[], Mapping[str, str]] = dict


class JobRunner:
    def __init__(
        self,
        config: RuntimeConfig,
        engine: Engine,
        storage: Storage,
        probes: ProbeCache | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.storage = storage
        self.stager = Stager(storage)
        self.probes = probes
        self._probe_cache: dict[str, ImageContents] = {}
        self._probe_lock = threading.Lock()

    # -- entry points ----------------------------------------------------------------------

    def run(self, spec: JobSpec, reporter: Reporter, control: StopControl) -> Outcome:
        """Run the job to its outcome. The caller records the outcome, then calls ``release``:
        containers and workspace stay until the outcome is stored, so a worker that dies in
        between leaves a job that can be taken over and collected again."""
        workspace = Workspace.at(self.config.jobs_dir, spec)
        started = reporter.phase(Phase.DOWNLOADING_DATA)
        deadline = started + spec.max_runtime_seconds
        watch = _Watch(control, deadline)
        try:
            workspace.create(spec)
            staged = self.stager.stage(spec, workspace, watch.should_abort)
            self.stager.restore_checkpoints(spec, workspace, watch.should_abort)
        except JobFailure as exc:
            if watch.should_abort():
                return watch.outcome_without_container()
            return Outcome(OutcomeKind.FAILED, exc.failure_reason)
        except OSError as exc:
            return Outcome(
                OutcomeKind.FAILED,
                f"{Fault.PLATFORM.value}: cannot prepare the job's workspace: {exc}",
            )
        if watch.should_abort():
            return watch.outcome_without_container()
        reporter.phase(Phase.DOWNLOADING_IMAGE)
        try:
            image = self.engine.image(spec.image)
            for warning in image_warnings(spec, image, self._probe(spec.image, image.id)):
                reporter.warning(warning)
        except ImageNotFound as exc:
            return Outcome(OutcomeKind.FAILED, f"{Fault.CLIENT.value}: {exc}")
        except EngineError as exc:
            return Outcome(OutcomeKind.FAILED, f"{Fault.PLATFORM.value}: {exc}")
        if watch.should_abort():
            return watch.outcome_without_container()
        reporter.phase(Phase.TRAINING)
        try:
            running = self._launch(spec, workspace, staged.mounts, reporter)
        except ContainerStartError as exc:
            return Outcome(OutcomeKind.FAILED, f"{Fault.CLIENT.value}: {exc}")
        except EngineError as exc:
            return Outcome(OutcomeKind.FAILED, f"{Fault.PLATFORM.value}: {exc}")
        return self._watch_and_collect(spec, workspace, running, reporter, watch)

    def resume(
        self,
        spec: JobSpec,
        running: Sequence[RunningContainer],
        reporter: Reporter,
        control: StopControl,
        training_start_time: float,
        stopping: bool,
    ) -> Outcome:
        """Carry on with containers a dead worker launched: logs, stop, max runtime, upload."""
        workspace = Workspace.at(self.config.jobs_dir, spec)
        watch = _Watch(control, training_start_time + spec.max_runtime_seconds)
        if stopping:
            watch.reason = Phase.STOPPING
        return self._watch_and_collect(spec, workspace, list(running), reporter, watch)

    def release(self, spec: JobSpec) -> None:
        """After the outcome is recorded: remove the job's containers and network, and its host
        directories, as a SageMaker instance's storage goes with it (the artifacts are uploaded
        by then). TRAINFORGE_KEEP_CONTAINERS and TRAINFORGE_KEEP_WORKSPACES keep them."""
        if not self.config.keep_containers:
            labels = self._labels(spec, None)
            with contextlib.suppress(EngineError):
                for found in self.engine.find(labels):
                    self.engine.remove(found.id)
                if len(spec.hosts) > 1:
                    self.engine.remove_networks(labels)
        if not self.config.keep_workspaces:
            Workspace.at(self.config.jobs_dir, spec).remove()

    # -- launch ----------------------------------------------------------------------------

    def _probe(self, ref: str, image_id: str) -> ImageContents:
        with self._probe_lock:
            cached = self._probe_cache.get(image_id)
        if cached is None and self.probes is not None:
            cached = self.probes.get(image_id)
        if cached is None:
            cached = self.engine.probe_image(ref, str(contract.OPT_ML), contract.TRAIN_ARGUMENT)
            if self.probes is not None:
                self.probes.put(image_id, cached)
        with self._probe_lock:
            self._probe_cache[image_id] = cached
        return cached

    def _launch(
        self,
        spec: JobSpec,
        workspace: Workspace,
        mounts: Mapping[str, list[Mount]],
        reporter: Reporter,
    ) -> list[RunningContainer]:
        multi = len(spec.hosts) > 1
        network = "none" if spec.network_isolation and not multi else None
        if multi:
            network = f"trainforge-{spec.name}-{secrets.token_hex(3)}"
            self.engine.create_network(
                network, self._labels(spec, None), internal=spec.network_isolation
            )
        entrypoint, command = container_invocation(spec)
        env = self._environment(spec)
        launched: list[RunningContainer] = []
        try:
            for hw in workspace.hosts:
                launched.append(
                    self._launch_host(spec, hw, mounts, reporter, entrypoint, command, env, network)
                )
        except EngineError:
            # Remove what did start; the others never will.
            self.release_containers(launched)
            raise
        return launched

    def _launch_host(
        self,
        spec: JobSpec,
        hw: HostWorkspace,
        mounts: Mapping[str, list[Mount]],
        reporter: Reporter,
        entrypoint: tuple[str, ...] | None,
        command: tuple[str, ...] | None,
        env: Mapping[str, str],
        network: str | None,
    ) -> RunningContainer:
        multi = len(spec.hosts) > 1
        host = hw.host.name
        binds = [
            BindMount(hw.root, contract.OPT_ML, False),
            BindMount(hw.config_dir, contract.INPUT_CONFIG, True),
        ]
        binds += [BindMount(m.source, m.target, m.read_only) for m in mounts.get(host, [])]
        if spec.checkpoint is not None:
            target = PurePosixPath(spec.checkpoint.local_path)
            binds.append(BindMount(hw.checkpoint_dir, target, False))
        resources = spec.resources
        stream = contract.log_stream_name(spec.name, host, int(time.time()))
        container_spec = ContainerSpec(
            name=f"{spec.name}-{host}-{secrets.token_hex(3)}",
            image=spec.image,
            entrypoint=entrypoint,
            command=command,
            env=env,
            hostname=host,
            mounts=binds,
            labels={**self._labels(spec, host), "trainforge.stream": stream},
            network=network,
            network_aliases=(host,) if multi else (),
            cpus=resources.get("cpus"),
            memory_bytes=resources.get("memory_bytes"),
            shm_bytes=resources.get("shm_bytes"),
            gpus=int(resources.get("gpus") or 0),
            gpu_ids=tuple((resources.get("gpu_ids") or {}).get(host, ())),
        )
        reporter.stream_opened(host, stream)
        container_id = self.engine.launch(container_spec)
        reporter.container_started(host, container_id, stream)
        return RunningContainer(host, container_id, stream)

    def _labels(self, spec: JobSpec, host: str | None) -> dict[str, str]:
        labels = {"trainforge.job": spec.name, "trainforge.instance": self.config.instance_label}
        if host is not None:
            labels["trainforge.host"] = host
        return labels

    def _environment(self, spec: JobSpec) -> dict[str, str]:
        env = {
            contract.ENV_JOB_NAME: spec.name,
            contract.ENV_JOB_ARN: spec.arn,
            contract.ENV_REGION: spec.region,
            contract.ENV_DEFAULT_REGION: spec.region,
        }
        env.update(self.config.container_env())
        env.update(spec.environment)
        return env

    # -- watch and collect --------------------------------------------------------------------

    def _watch_and_collect(
        self,
        spec: JobSpec,
        workspace: Workspace,
        running: list[RunningContainer],
        reporter: Reporter,
        watch: _Watch,
    ) -> Outcome:
        pump = LogPump(self.engine, reporter.log_lines, self.config.log_flush_seconds)
        exit_codes: dict[str, int] = {}
        waiters = []
        done = threading.Event()
        lock = threading.Lock()

        def wait_for(container: RunningContainer) -> None:
            code = self.engine.wait(container.container_id)
            with lock:
                exit_codes[container.host] = code if code is not None else 137
                if len(exit_codes) == len(running) or (code or 0) != 0:
                    done.set()

        for container in running:
            pump.follow(container.host, container.container_id, container.log_cursor_ns)
            thread = threading.Thread(target=wait_for, args=(container,), daemon=True)
            thread.start()
            waiters.append(thread)

        signalled_at: float | None = None
        killed = False
        try:
            while True:
                done.wait(_POLL_SECONDS)
                with lock:
                    finished = len(exit_codes) == len(running)
                    failed_host = any(code != 0 for code in exit_codes.values())
                if finished:
                    break
                if signalled_at is None:
                    reason = watch.check()
                    if reason is None and failed_host:
                        # One host failed: the job has failed; end the others the same way.
                        reason = Phase.STOPPING
                        watch.peer_failed = True
                    if reason is not None:
                        if not watch.peer_failed:
                            reporter.phase(reason)
                        for container in running:
                            self.engine.signal(container.container_id, "SIGTERM")
                        signalled_at = time.monotonic()
                elif (
                    not killed and time.monotonic() - signalled_at >= self.config.stop_grace_seconds
                ):
                    for container in running:
                        self.engine.signal(container.container_id, "SIGKILL")
                    killed = True
                done.clear()
        except BaseException:
            # Something of ours broke (the engine went away, say): the containers must not run
            # on unwatched. The job is recorded as failed by the caller.
            for container in running:
                with contextlib.suppress(EngineError):
                    self.engine.signal(container.container_id, "SIGKILL")
            raise
        finally:
            for thread in waiters:
                thread.join(timeout=30)
            for error in pump.close():
                reporter.warning(f"Reading the container output failed: {error}")
        states = {c.host: self.engine.state(c.container_id) for c in running}
        outcome = self._outcome(spec, workspace, exit_codes, states, watch)
        return self._collect(spec, workspace, outcome, reporter)

    def _outcome(
        self,
        spec: JobSpec,
        workspace: Workspace,
        exit_codes: Mapping[str, int],
        states: Mapping[str, object],
        watch: _Watch,
    ) -> Outcome:
        if watch.reason is Phase.STOPPING and not watch.peer_failed:
            return Outcome(OutcomeKind.STOPPED, exit_codes=exit_codes)
        if watch.reason is Phase.MAX_RUNTIME:
            return Outcome(OutcomeKind.MAX_RUNTIME, exit_codes=exit_codes)
        failing = [hw for hw in workspace.hosts if exit_codes.get(hw.host.name, 0) != 0]
        if not failing:
            return Outcome(OutcomeKind.COMPLETED, exit_codes=exit_codes)
        first = failing[0]
        state = states.get(first.host.name)
        if getattr(state, "oom_killed", False):
            return Outcome(OutcomeKind.FAILED, OOM_REASON, exit_codes)
        code = exit_codes[first.host.name]
        reason = algorithm_failure_reason(read_failure(first.output_dir), code)
        return Outcome(OutcomeKind.FAILED, reason, exit_codes)

    def _collect(
        self, spec: JobSpec, workspace: Workspace, outcome: Outcome, reporter: Reporter
    ) -> Outcome:
        if outcome.kind is OutcomeKind.COMPLETED:
            reporter.phase(Phase.UPLOADING)
        collector = Collector(self.storage, spec, workspace)
        try:
            for warning in collector.upload():
                reporter.warning(warning)
        except (StorageError, OSError) as exc:
            if outcome.kind is OutcomeKind.FAILED:
                reporter.warning(f"Uploading the artifacts of the failed job failed: {exc}")
                return outcome
            return Outcome(
                OutcomeKind.FAILED,
                f"{Fault.CLIENT.value}: Uploading the model artifacts to {spec.output_prefix} "
                f"failed: {exc}",
                outcome.exit_codes,
            )
        return outcome

    def release_containers(self, running: Sequence[RunningContainer]) -> None:
        with contextlib.suppress(EngineError):
            for container in running:
                self.engine.remove(container.container_id)


def container_invocation(spec: JobSpec) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """(entrypoint, command) for the four cases of spec §4.1, as ``docker run`` would take them.

    Neither: the image's ENTRYPOINT with the single argument ``train``. ContainerEntrypoint only:
    that entrypoint and no arguments (the image CMD is discarded). ContainerArguments only: the
    image's ENTRYPOINT with those arguments. Both: the entrypoint followed by the arguments.
    """
    if spec.entrypoint is None and spec.arguments is None:
        return None, (contract.TRAIN_ARGUMENT,)
    if spec.entrypoint is None:
        return None, spec.arguments
    return spec.entrypoint, spec.arguments or ()


class _Watch:
    """Why a job must end early: a stop request or its MaxRuntimeInSeconds deadline."""

    def __init__(self, control: StopControl, deadline: float) -> None:
        self.control = control
        self.deadline = deadline
        self.reason: Phase | None = None
        self.peer_failed = False

    def check(self) -> Phase | None:
        if self.reason is None:
            if self.control.stop_requested():
                self.reason = Phase.STOPPING
            elif time.time() >= self.deadline:
                self.reason = Phase.MAX_RUNTIME
        return self.reason

    def should_abort(self) -> bool:
        return self.check() is not None

    def outcome_without_container(self) -> Outcome:
        kind = OutcomeKind.MAX_RUNTIME if self.reason is Phase.MAX_RUNTIME else OutcomeKind.STOPPED
        return Outcome(kind)

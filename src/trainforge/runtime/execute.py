"""The execute step of a job's lifecycle: prepare the hosts' /opt/ml trees → check the image →
start the host group → watch it (logs, stop, max runtime, a failing peer) → collect → outcome.

Stop requests and the MaxRuntimeInSeconds deadline end the job the way SageMaker does, whatever
phase it is in: while inputs download, the download stops and the job ends Stopped (or
MaxRuntimeExceeded); once the containers run, they get SIGTERM, the grace period, SIGKILL, and
the artifacts written until then are still collected. A worker that takes over a job whose
worker died calls ``resume``, and the job carries on from where the store says it was.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from trainforge.domain import contract
from trainforge.domain.allocation import Allocation
from trainforge.domain.images import ImageSource
from trainforge.engines.base import (
    Engine,
    GroupSpec,
    HostContainer,
    HostState,
    ImageContents,
    Limits,
    Mount,
)
from trainforge.errors import (
    ContainerStartError,
    EngineError,
    ImageNotFound,
    JobFailure,
    StorageCancelled,
)
from trainforge.runtime.aws_access import AwsAccess, Grant
from trainforge.runtime.dataplane import DataPlane
from trainforge.runtime.image_checks import image_warnings
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.registry import RegistryAccess
from trainforge.runtime.report import (
    Ending,
    Outcome,
    OutcomeKind,
    Phase,
    ProbeCache,
    Reporter,
    StopControl,
)
from trainforge.runtime.watch import GroupWatch, WatchState

# An exit this close to an engine outage is the engine's doing, not the algorithm's.
_OUTAGE_MARGIN_SECONDS = 5.0
_OUTSIDE_SIGNALS = frozenset({signal.SIGTERM, signal.SIGKILL})


@dataclass(frozen=True)
class RuntimeConfig:
    stop_grace_seconds: float
    keep_containers: bool = False
    keep_workspaces: bool = False
    log_flush_seconds: float = 0.2
    engine_outage_seconds: float = 60.0
    instance_metrics_seconds: float = 10.0
    # What the containers get to reach AWS (S3 endpoint, the role's credentials); None: nothing.
    aws: AwsAccess | None = None


@dataclass(frozen=True)
class Resume:
    """Where a worker that died left its job, as the store kept it."""

    cursors: Mapping[str, int]
    training_start_time: float
    ending: Ending | None
    terminated_at: float | None


class JobRunner:
    def __init__(
        self,
        config: RuntimeConfig,
        engine: Engine,
        data: DataPlane,
        probes: ProbeCache | None = None,
        registry: RegistryAccess | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.registry = registry or RegistryAccess({})
        self.data = data
        self.probes = probes
        self._probe_cache: dict[str, ImageContents] = {}
        self._probe_lock = threading.Lock()
        # Jobs whose hosts were started (or taken over): only they may have something to remove.
        self._started: set[str] = set()

    # -- entry points ----------------------------------------------------------------------

    def run(
        self, spec: JobSpec, allocation: Allocation, reporter: Reporter, control: StopControl
    ) -> Outcome:
        """Run the job to its outcome. The caller records the outcome, then calls ``release``:
        containers and trees stay until the outcome is stored, so a worker that dies in between
        leaves a job that can be taken over and collected again."""
        started = reporter.phase(Phase.DOWNLOADING_DATA)
        early = _EarlyEnd(control, started + spec.max_runtime_seconds)
        try:
            mounts = self.data.prepare(spec, allocation, early.check)
        except StorageCancelled:
            self.data.inputs_done(spec)
            return Outcome.ended_early(early.ending)
        except JobFailure as exc:
            # What was staged goes at once: a disk it filled must not wait for the release.
            self.data.inputs_done(spec)
            return Outcome.ended_early(early.ending) if early.check() else Outcome.failed(exc)
        if early.check():
            return Outcome.ended_early(early.ending)
        reporter.phase(Phase.DOWNLOADING_IMAGE)
        source = ImageSource(spec.image)
        try:
            image = self.engine.image(spec.image, lambda: self.registry.source(spec.image))
            if self.engine.spans_machines:
                # The nodes pull the image themselves, with the login the server's pull used.
                source = self.registry.source(spec.image)
            for warning in image_warnings(spec, image, self._probe(spec.image, image.id)):
                reporter.warning(warning)
        except ImageNotFound as exc:
            return Outcome.failed(JobFailure.client(str(exc)))
        except EngineError as exc:
            return Outcome.failed(JobFailure.platform(str(exc)))
        # Before Training: a host's log stream opens as soon as Training begins. (The role's
        # credentials are found when a container first asks for them.)
        grant = self.config.aws.open(spec, reporter.warning) if self.config.aws else Grant()
        if early.check():
            self._close_aws(spec)
            return Outcome.ended_early(early.ending)
        reporter.phase(Phase.TRAINING)
        group = self._group(spec, allocation, mounts, reporter, source, grant)
        self._started.add(spec.name)
        try:
            self.engine.start(group)
        except ContainerStartError as exc:
            self._close_aws(spec)
            return Outcome.failed(JobFailure.client(str(exc)))
        except EngineError as exc:
            self._close_aws(spec)
            return Outcome.failed(JobFailure.platform(str(exc)))
        state = WatchState()
        deadline = started + spec.max_runtime_seconds
        return self._watch_and_collect(spec, allocation, reporter, control, deadline, state, {})

    def resume(
        self,
        spec: JobSpec,
        allocation: Allocation | None,
        resume: Resume,
        reporter: Reporter,
        control: StopControl,
    ) -> Outcome:
        """Carry on with the hosts a dead worker started: logs, stop, max runtime, upload."""
        self._started.add(spec.name)
        if self.config.aws is not None and resume.ending is None:
            # The containers hold their token still: it is served again, fresh credentials too.
            self.config.aws.open(spec, reporter.warning)
        state = WatchState(ending=resume.ending, terminated_at=resume.terminated_at)
        deadline = resume.training_start_time + spec.max_runtime_seconds
        return self._watch_and_collect(
            spec, allocation, reporter, control, deadline, state, resume.cursors
        )

    def release(self, spec: JobSpec) -> None:
        """After the outcome is recorded: remove the job's containers, network and trees, as a
        SageMaker instance's storage goes with it (the artifacts are uploaded by then).
        TRAINFORGE_KEEP_CONTAINERS and TRAINFORGE_KEEP_WORKSPACES keep them. Raises
        ``EngineError`` when the engine could not remove a job's hosts (it may be restarting):
        the caller tries again. A job that never started a host has nothing to wait for."""
        started = spec.name in self._started
        self._started.discard(spec.name)
        self._close_aws(spec)
        if not self.config.keep_workspaces:
            self.data.release(spec)
        if not self.config.keep_containers:
            try:
                self.engine.remove(spec.name)
            except EngineError:
                if started:
                    self._started.add(spec.name)
                    raise

    def release_attempt(self, spec: JobSpec) -> None:
        """Between two attempts of a job (a spot interruption, a retry): the last attempt's
        containers, network and trees go whatever TRAINFORGE_KEEP_* say, since the next one
        starts fresh hosts of the same names. Raises ``EngineError`` as ``release`` does."""
        self.data.release(spec)
        self.engine.remove(spec.name)
        self._started.discard(spec.name)

    def _close_aws(self, spec: JobSpec) -> None:
        if self.config.aws is not None:
            self.config.aws.close(spec)

    # -- start -----------------------------------------------------------------------------

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

    def _group(
        self,
        spec: JobSpec,
        allocation: Allocation,
        mounts: Mapping[str, tuple[Mount, ...]],
        reporter: Reporter,
        source: ImageSource | None = None,
        grant: Grant | None = None,
    ) -> GroupSpec:
        source = source or ImageSource(spec.image)
        grant = grant or Grant()
        entrypoint, command = container_invocation(spec)
        env = self._environment(spec, grant)
        started = int(time.time())
        hosts = []
        for host in spec.hosts:
            given = allocation.host(host.name)
            limits = (
                Limits(given.cpus, given.memory_bytes, given.shm_bytes, given.gpu_ids)
                if given is not None
                else Limits()
            )
            stream = contract.log_stream_name(spec.name, host.name, started)
            reporter.stream_opened(host.name, stream)
            hosts.append(
                HostContainer(
                    host=host.name,
                    image=source.ref,
                    entrypoint=entrypoint,
                    command=command,
                    env=env,
                    mounts=mounts.get(host.name, ()),
                    limits=limits,
                    stream=stream,
                    node=given.node if given is not None else None,
                )
            )
        return GroupSpec(
            spec.name,
            tuple(hosts),
            spec.network_isolation,
            self.config.stop_grace_seconds,
            source.auth,
            grant.secret_files,
        )

    def _environment(self, spec: JobSpec, grant: Grant) -> dict[str, str]:
        env = {
            contract.ENV_JOB_NAME: spec.name,
            contract.ENV_JOB_ARN: spec.arn,
            contract.ENV_REGION: spec.region,
            contract.ENV_DEFAULT_REGION: spec.region,
        }
        # An isolated job's grant is empty: no AWS credentials, whatever was asked (spec §14).
        env.update(grant.env)
        env.update(spec.environment)
        return env

    # -- watch and collect -----------------------------------------------------------------

    def _watch_and_collect(
        self,
        spec: JobSpec,
        allocation: Allocation | None,
        reporter: Reporter,
        control: StopControl,
        deadline: float,
        state: WatchState,
        cursors: Mapping[str, int],
    ) -> Outcome:
        # Loaded once the hosts have started, while they run.
        from trainforge.runtime.instance_metrics import InstanceSampler
        from trainforge.runtime.logpump import LogPump

        hosts = [h.name for h in spec.hosts]
        pump = LogPump(self.engine, spec.name, reporter.log_lines, self.config.log_flush_seconds)
        for host in hosts:
            pump.follow(host, cursors.get(host, 0))
        attendance = self.data.attend(spec, allocation, reporter.metrics)
        sampler = InstanceSampler(
            self.engine,
            spec.name,
            self.config.instance_metrics_seconds,
            reporter.metrics,
            lambda host: self.data.disk_path(spec, host),
            {h.host: h.gpu_ids for h in allocation.hosts} if allocation is not None else {},
        ).start()
        watch = GroupWatch(
            self.engine,
            spec.name,
            hosts,
            control,
            deadline,
            self.config.stop_grace_seconds,
            reporter,
            state,
            self.config.engine_outage_seconds,
        )
        failure: JobFailure | None = None
        states: dict[str, HostState] = {}
        try:
            states = watch.run()
        except JobFailure as exc:
            failure = exc
            with contextlib.suppress(EngineError):
                watch.kill_now()
        except BaseException:
            with contextlib.suppress(EngineError):
                watch.kill_now()
            raise
        finally:
            # The containers have ended: their token is refused from now on.
            self._close_aws(spec)
            sampler.stop()
            for error in pump.close():
                reporter.warning(f"Reading the container output failed: {error}")
            for warning in attendance.stop():
                reporter.warning(warning)
        self.data.inputs_done(spec)
        outcome = (
            Outcome.failed(failure)
            if failure
            else outcome_of(spec, states, state, {}, self.engine.describe())
        )
        if outcome.kind is OutcomeKind.COMPLETED:
            reporter.phase(Phase.UPLOADING)
        collected = self.data.collect(spec, allocation)
        for warning in collected.warnings:
            reporter.warning(warning)
        if failure is None:
            outcome = outcome_of(
                spec, states, state, collected.failure_texts, self.engine.describe()
            )
        if collected.error is not None:
            if outcome.kind is OutcomeKind.FAILED:
                reporter.warning(
                    f"Uploading the artifacts of the failed job failed: {collected.error.reason}"
                )
                return outcome
            return Outcome.failed(collected.error, outcome.exit_codes)
        return outcome


def outcome_of(
    spec: JobSpec,
    states: Mapping[str, HostState],
    watch: WatchState,
    failure_texts: Mapping[str, str | None],
    engine: str = "the container engine",
) -> Outcome:
    """How the job ended, from its hosts' last states and what the watch did. A failed job's
    FailureReason comes from the host that failed first."""
    codes = {h: s.exit_code for h, s in states.items() if s.exit_code is not None}
    if watch.ending is not None and watch.ending is not Ending.PEER_FAILED:
        return Outcome(Outcome.ended_early(watch.ending).kind, exit_codes=codes)
    failed = [
        h.name for h in spec.hosts if h.name not in states or (states[h.name].exit_code or 0) != 0
    ]
    if not failed:
        return Outcome(OutcomeKind.COMPLETED, exit_codes=codes)

    def when(host: str) -> float:
        found = states.get(host)
        if found is not None and found.finished_at is not None:
            return found.finished_at
        return watch.seen_ending.get(host, math.inf)

    first = min(failed, key=when)
    found = states.get(first)
    if found is None:
        return Outcome.failed(
            JobFailure.platform(
                f"Host {first} was lost while the job ran: its container no longer exists."
            ),
            codes,
        )
    code = codes.get(first, 0)
    if found.oom_killed:
        return Outcome.failed(JobFailure.out_of_memory(), codes)
    finished = found.finished_at
    for began, ended in watch.outages:
        if finished is None or began - _OUTAGE_MARGIN_SECONDS <= finished <= (
            ended + _OUTAGE_MARGIN_SECONDS
        ):
            return Outcome.failed(
                JobFailure.platform(
                    f"The container engine went away while the job ran, and {first} ended "
                    f"meanwhile (exit code {code}). Create the job again to rerun it."
                ),
                codes,
            )
    signalled = watch.terminated_at is not None and (
        finished is None or finished >= watch.terminated_at - _OUTAGE_MARGIN_SECONDS
    )
    if found.signal in _OUTSIDE_SIGNALS and not signalled:
        # PID 1 of a container ignores SIGTERM and SIGKILL sent from inside it: dying of one
        # means something outside the job sent it (the engine stopping, an operator).
        return Outcome.failed(
            JobFailure.platform(
                f"{first} was ended by a signal trainforge did not send (exit code {code}): "
                f"its container was stopped from outside the job, by {engine} restarting or "
                "by someone stopping it. Create the job again to rerun it."
            ),
            codes,
        )
    return Outcome.failed(JobFailure.algorithm(failure_texts.get(first), code), codes)


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


class _EarlyEnd:
    """A stop request, an interruption, or a deadline, before any container runs."""

    def __init__(self, control: StopControl, deadline: float) -> None:
        self.control = control
        self.deadline = deadline
        self.ending: Ending | None = None

    def check(self) -> bool:
        if self.ending is None:
            requested = self.control.ending()
            if requested is not None:
                self.ending = requested
            elif time.time() >= self.deadline:
                self.ending = Ending.MAX_RUNTIME
        return self.ending is not None

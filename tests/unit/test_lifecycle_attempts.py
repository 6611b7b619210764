"""A job's later attempts, in-process against the scripted engine (engines/fake.py) and a real
store and data plane on a temporary directory: a spot interruption (asked through the store, as
``trainforge interrupt`` asks, or drawn at random) starts the job again on fresh hosts with its
checkpoints restored and a new log stream; MaxWaitTimeInSeconds ends a spot job; a platform
fault is retried as RetryStrategy allows and an algorithm error never is; a job that waited too
long in the queue is stopped. The interruption is tested with real containers in
tests/integration/test_spot_and_retries.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_lifecycle import World, model_files, statuses
from trainforge.domain.status import MESSAGES, SecondaryStatus
from trainforge.engines.fake import FakeEngine, HostScript, runs_until_signalled
from trainforge.errors import ValidationError
from trainforge.scheduler.attempts import queue_expiry, retries_used
from trainforge.scheduler.control import StoreStopControl
from trainforge.scheduler.lifecycle import Lifecycle, Placement, expire_if_waited_too_long
from trainforge.service.mapping import describe

S = SecondaryStatus


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[..., World]]:
    worlds: list[World] = []

    def make(scripts: Any = None) -> World:
        world = World(tmp_path, FakeEngine(scripts))
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()


class Attempts:
    """Scripts that change from one attempt to the next; records what each attempt found in its
    checkpoint directory when its hosts started."""

    def __init__(self, root: Path, scripts: list[HostScript]) -> None:
        self.root = root
        self.scripts = scripts
        self.found: list[list[str]] = []

    def __call__(self, job: str, host: str) -> HostScript:
        checkpoints = self.root / "jobs" / job / "hosts" / host / "checkpoints"
        self.found.append(sorted(p.name for p in checkpoints.iterdir()))
        return self.scripts[min(len(self.found), len(self.scripts)) - 1]


def spot(world: World, max_wait: int = 60, **extra: Any) -> dict[str, Any]:
    return {
        "EnableManagedSpotTraining": True,
        "StoppingCondition": {
            "MaxRuntimeInSeconds": min(60, max_wait),
            "MaxWaitTimeInSeconds": max_wait,
        },
        "CheckpointConfig": {"S3Uri": f"file://{world.root}/ckpt"},
        **extra,
    }


def when_training(world: World, name: str, then: Callable[[], object]) -> threading.Thread:
    """Call ``then`` once the job is Training (at most 10 s from now)."""

    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            job = world.jobs.get(name)
            if job is not None and job.secondary_status is S.TRAINING:
                then()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_an_interrupted_spot_job_starts_again_with_its_checkpoints(make_world: Any) -> None:
    world = make_world()
    attempts = Attempts(
        world.root,
        [
            runs_until_signalled(files={"checkpoints/epoch-1.ckpt": "1", "model/m.txt": "first"}),
            HostScript(runs_for=0.05, files={"model/m.txt": "second"}),
        ],
    )
    world.engine.scripts = attempts
    asker = when_training(world, "spot", lambda: world.service.interrupt_training_job("spot"))
    job = world.run("spot", **spot(world))
    asker.join()
    assert job.secondary_status is S.COMPLETED
    assert statuses(job) == [
        "Starting",
        "Downloading",
        "Training",
        "Interrupted",
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert job.transitions[3].message == MESSAGES["interrupted"]
    # The first attempt got SIGTERM, its checkpoint was uploaded, and restored for the second.
    assert len(world.engine.called("terminate")) == 1
    assert len(world.engine.called("start")) == 2
    assert attempts.found == [[], ["epoch-1.ckpt"]]
    assert (world.root / "ckpt" / "epoch-1.ckpt").read_text() == "1"
    assert model_files(world, "spot") == {"m.txt": b"second"}
    # A stream per attempt, as SageMaker opens a new one on every restart.
    streams = world.logs.streams("/aws/sagemaker/TrainingJobs", prefix="spot/")
    assert len({s.name for s in streams}) == 2
    # The interruption was carried out: a later attempt is not interrupted again.
    assert world.jobs.requests("spot") == (False, False)
    described = describe(job)
    assert described["EnableManagedSpotTraining"] is True
    assert 1 <= described["BillableTimeInSeconds"] <= described["TrainingTimeInSeconds"]


def test_interrupt_is_refused_unless_a_spot_job_is_downloading_or_training(
    make_world: Any,
) -> None:
    world = make_world({"algo-1": HostScript(runs_for=0.05)})
    with pytest.raises(ValidationError, match="Requested resource not found"):
        world.service.interrupt_training_job("nope")
    world.create("run", "on-demand")
    with pytest.raises(ValidationError, match="not a managed spot training job"):
        world.service.interrupt_training_job("on-demand")
    world.create("run", "waiting", **spot(world))
    with pytest.raises(ValidationError, match=r"cannot be interrupted now: .*\(Starting\)"):
        world.service.interrupt_training_job("waiting")
    assert world.jobs.requests("waiting") == (False, False)
    job = world.run("done", **spot(world))
    assert job.secondary_status is S.COMPLETED
    with pytest.raises(ValidationError, match=r"status is Completed \(Completed\)"):
        world.service.interrupt_training_job("done")


def test_max_wait_time_ends_a_running_spot_job(make_world: Any) -> None:
    world = make_world({"algo-1": runs_until_signalled(files={"model/m.txt": "kept"})})
    job = world.run(
        "waited",
        **spot(world, StoppingCondition={"MaxRuntimeInSeconds": 1, "MaxWaitTimeInSeconds": 1}),
    )
    assert job.secondary_status is S.MAX_WAIT_TIME_EXCEEDED
    assert job.status.value == "Stopped"
    assert statuses(job)[-2:] == ["Stopping", "MaxWaitTimeExceeded"]
    assert job.transitions[-1].message == MESSAGES["max_wait"]
    assert model_files(world, "waited") == {"m.txt": b"kept"}


def test_random_interruptions_restart_a_spot_job_until_max_wait(make_world: Any) -> None:
    world = make_world({"algo-1": runs_until_signalled()})
    lifecycle = Lifecycle(
        world.jobs,
        world.logs,
        world.runner,
        world.engine,
        Placement(lambda: world.nodes, spread=False),
        "run",
        lease_seconds=30.0,
        heartbeat_seconds=5.0,
        region="us-east-1",
        interruptions_per_hour=3600.0 * 20,  # one every 50 ms on average
    )
    world.lifecycles.append(lifecycle)
    world.create("run", "soak", **spot(world, max_wait=2))
    lifecycle.hold("soak")
    control = StoreStopControl(world.jobs, "soak", interval=0.05)
    allocation = lifecycle.wait_for_allocation("soak", control, poll_seconds=0.05)
    job = lifecycle.execute("soak", allocation, control)
    assert job.secondary_status is S.MAX_WAIT_TIME_EXCEEDED
    seen = statuses(job)
    assert seen.count("Interrupted") >= 1
    # The deadline may come while the job is interrupted, before it starts again.
    assert seen.count("Starting") - seen.count("Interrupted") in (0, 1)
    assert seen[-2:] == ["Stopping", "MaxWaitTimeExceeded"]
    assert len(world.engine.called("start")) >= 2


def lost_then(*scripts: HostScript) -> Callable[[str, str], HostScript]:
    """Each attempt's script in turn (the last one repeats)."""
    calls: list[int] = []

    def script(job: str, host: str) -> HostScript:
        calls.append(1)
        return scripts[min(len(calls), len(scripts)) - 1]

    return script


def test_a_platform_fault_is_retried_as_retry_strategy_allows(make_world: Any) -> None:
    world = make_world(
        lost_then(
            runs_until_signalled(lost_after=0.05),
            HostScript(runs_for=0.05, files={"model/m.txt": "retried"}),
        )
    )
    job = world.run("retried", RetryStrategy={"MaximumRetryAttempts": 2})
    assert job.secondary_status is S.COMPLETED
    assert statuses(job) == [
        "Starting",
        "Downloading",
        "Training",
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert job.transitions[3].message == MESSAGES["retrying"].format(attempt=2, of=3)
    assert retries_used(job) == 1
    assert model_files(world, "retried") == {"m.txt": b"retried"}


def test_retries_run_out_and_an_algorithm_error_is_never_retried(make_world: Any) -> None:
    world = make_world(lost_then(runs_until_signalled(lost_after=0.05)))
    job = world.run("lost", RetryStrategy={"MaximumRetryAttempts": 1})
    assert job.secondary_status is S.FAILED
    assert job.failure_reason is not None
    assert job.failure_reason.startswith("InternalServerError: Host algo-1 was lost")
    assert statuses(job).count("Starting") == 2
    assert len(world.engine.called("start")) == 2

    world.engine.scripts = {"algo-1": HostScript(runs_for=0.05, exit_code=3)}
    job = world.run("broken", RetryStrategy={"MaximumRetryAttempts": 3})
    assert job.secondary_status is S.FAILED
    assert job.failure_reason == "AlgorithmError: , exit code: 3"
    assert statuses(job).count("Starting") == 1


def test_a_job_waiting_past_max_pending_time_is_stopped_saying_why(make_world: Any) -> None:
    world = make_world()
    world.service.create_training_job(
        world.request(
            "queued", StoppingCondition={"MaxRuntimeInSeconds": 60, "MaxPendingTimeInSeconds": 7200}
        )
    )
    job = world.jobs.get("queued")
    assert job is not None
    assert not expire_if_waited_too_long(world.jobs, job, job.creation_time + 7199)
    assert expire_if_waited_too_long(world.jobs, job, job.creation_time + 7200)
    ended = world.jobs.get("queued")
    assert ended is not None and ended.status.value == "Stopped"
    assert statuses(ended) == ["Starting", "Stopping", "Stopped"]
    assert ended.transitions[-1].message == MESSAGES["max_pending"].format(seconds=7200)
    assert "TrainingStartTime" not in describe(ended)


def test_a_spot_job_that_never_started_ends_max_wait_time_exceeded(make_world: Any) -> None:
    world = make_world()
    world.service.create_training_job(world.request("never", **spot(world, max_wait=120)))
    job = world.jobs.get("never")
    assert job is not None
    assert queue_expiry(job, job.creation_time + 119) is None
    assert expire_if_waited_too_long(world.jobs, job, job.creation_time + 120)
    ended = world.jobs.get("never")
    assert ended is not None
    assert statuses(ended) == ["Starting", "Stopping", "MaxWaitTimeExceeded"]


def test_update_changes_what_describe_echoes_and_refuses_what_sagemaker_refuses(
    make_world: Any,
) -> None:
    world = make_world()
    world.create("run", "waiting", ProfilerRuleConfigurations=[_rule("a", "x")])
    with pytest.raises(ValidationError, match="while the training job's SecondaryStatus is "):
        world.service.update_training_job(
            {"TrainingJobName": "waiting", "RemoteDebugConfig": {"EnableRemoteDebug": True}}
        )
    world.service.update_training_job(
        {
            "TrainingJobName": "waiting",
            "ProfilerRuleConfigurations": [_rule("a", "y"), _rule("b", "z")],
            "ResourceConfig": {"KeepAlivePeriodInSeconds": 30},
        }
    )
    job = world.jobs.get("waiting")
    assert job is not None
    described = describe(job)
    assert [r["RuleEvaluatorImage"] for r in described["ProfilerRuleConfigurations"]] == ["y", "z"]
    assert described["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 30
    assert described["WarmPoolStatus"] == {"Status": "Terminated"}


def _rule(name: str, image: str) -> dict[str, Any]:
    return {"RuleConfigurationName": name, "RuleEvaluatorImage": image}


def test_a_worker_that_died_between_two_attempts_is_taken_over(make_world: Any) -> None:
    world = make_world({"algo-1": runs_until_signalled()})
    world.create("run:other-host:1:1", "between", **spot(world))
    dead = world.lifecycle("run:other-host:1:1")
    control = StoreStopControl(world.jobs, "between", interval=0.05)
    allocation = dead.wait_for_allocation("between", control, poll_seconds=0.05)
    assert allocation is not None
    # The dead worker's last acts: the first attempt ran, was interrupted and cleared away.
    for status in (S.DOWNLOADING, S.TRAINING, S.INTERRUPTED):
        world.jobs.transition("between", status, "x")
    world.jobs.heartbeat("run:other-host:1:1", ["between"], -1.0)
    world.engine.scripts = {"algo-1": HostScript(runs_for=0.05, files={"model/m.txt": "next"})}
    server = world.lifecycle("server")
    [schedule] = server.recover()
    job = server.resume("between", schedule, StoreStopControl(world.jobs, "between"))
    assert job.secondary_status is S.COMPLETED
    assert statuses(job)[3:] == [
        "Interrupted",
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert model_files(world, "between") == {"m.txt": b"next"}

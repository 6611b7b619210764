"""The job lifecycle's rules, in-process against the scripted engine (engines/fake.py) and a real
store and data plane on a temporary directory: completion, stop and max runtime in every phase,
the SIGKILL after the grace period, the failing and the lost peer, out-of-memory, upload
failures, admission, recovery after a worker died (with its SIGKILL deadline), and an engine
that goes away. The same behaviours are tested with real containers in tests/integration."""

from __future__ import annotations

import io
import math
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from trainforge.domain.allocation import Node
from trainforge.domain.records import QueueState, Schedule
from trainforge.domain.status import SecondaryStatus
from trainforge.engines.fake import FakeEngine, HostScript, runs_until_signalled
from trainforge.errors import EngineError, StorageCancelled
from trainforge.runtime.dataplane import LocalDataPlane
from trainforge.runtime.execute import JobRunner, RuntimeConfig
from trainforge.runtime.report import Phase
from trainforge.scheduler.control import StoreStopControl
from trainforge.scheduler.lifecycle import Lifecycle, Placement
from trainforge.scheduler.reporter import JobReporter
from trainforge.service.training_jobs import Claim, TrainingJobService
from trainforge.storage.base import Download, ObjectInfo, ShouldStop, Storage
from trainforge.storage.local import LocalStore
from trainforge.storage.location import Location
from trainforge.store.db import Database
from trainforge.store.jobs import JobStore
from trainforge.store.logs import LogStore

GRACE = 1.0


class SlowS3:
    """An S3 store whose downloads run until told to stop (a large channel)."""

    def __init__(self) -> None:
        self.downloading = threading.Event()

    def list(self, prefix: Location) -> Iterator[ObjectInfo]:
        yield ObjectInfo(prefix.key + "/big.bin", 1 << 30)

    def read_bytes(self, location: Location, max_bytes: int) -> bytes:
        return b""

    def download(self, items: Sequence[Download], should_stop: ShouldStop) -> int:
        self.downloading.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if should_stop():
                raise StorageCancelled()
            time.sleep(0.02)
        raise AssertionError("the download was never told to stop")

    def upload_file(self, path: Path, dest: Location) -> None:
        raise AssertionError("nothing is uploaded to S3 here")


class World:
    def __init__(self, root: Path, engine: FakeEngine, nodes: list[Node] | None = None) -> None:
        self.root = root
        self.engine = engine
        self.db = Database(root / "trainforge.db")
        self.jobs = JobStore(self.db)
        self.logs = LogStore(self.db)
        self.s3 = SlowS3()
        self.storage = Storage(lambda: self.s3, LocalStore())
        self.runner = JobRunner(
            RuntimeConfig(stop_grace_seconds=GRACE, engine_outage_seconds=1.5),
            engine,
            LocalDataPlane(root / "jobs", self.storage),
        )
        self.nodes = nodes or [Node("local", 8.0, 65536)]
        self.service = TrainingJobService(self.jobs, "us-east-1", "000000000000")
        self.lifecycles: list[Lifecycle] = []

    def lifecycle(self, owner: str) -> Lifecycle:
        lifecycle = Lifecycle(
            self.jobs,
            self.logs,
            self.runner,
            self.engine,
            Placement(lambda: self.nodes, spread=False),
            owner,
            lease_seconds=30.0,
            heartbeat_seconds=5.0,
            region="us-east-1",
        )
        self.lifecycles.append(lifecycle)
        return lifecycle

    def request(self, name: str, count: int = 1, **extra: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "RoleArn": "arn:aws:iam::000000000000:role/r",
            "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": f"file://{self.root}/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": count},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        }
        request.update(extra)
        return request

    def create(self, owner: str, name: str, count: int = 1, **extra: Any) -> None:
        self.service.create_training_job(self.request(name, count, **extra), Claim(owner, 30.0))

    def run(
        self, name: str, count: int = 1, control: StoreStopControl | None = None, **extra: Any
    ) -> Any:
        """As ``trainforge run`` does: create claimed, allocate, execute."""
        self.create("run", name, count, **extra)
        lifecycle = self.lifecycle("run")
        lifecycle.hold(name)
        control = control or StoreStopControl(self.jobs, name, interval=0.05)
        allocation = lifecycle.wait_for_allocation(name, control, poll_seconds=0.05)
        return lifecycle.execute(name, allocation, control)

    def messages(self, name: str) -> list[str]:
        streams = self.logs.streams("/aws/sagemaker/TrainingJobs", prefix=name + "/")
        return [e.message for e in self.logs.events([s.id for s in streams])]

    def close(self) -> None:
        for lifecycle in self.lifecycles:
            lifecycle.close()
        self.db.close()


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Any]:
    worlds: list[World] = []

    def make(scripts: Any = None, **kwargs: Any) -> World:
        world = World(tmp_path, FakeEngine(scripts), **kwargs)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()


def model_files(world: World, name: str) -> dict[str, bytes]:
    data = (world.root / "out" / name / "output" / "model.tar.gz").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def statuses(job: Any) -> list[str]:
    return [t.status.value for t in job.transitions]


def test_a_job_completes_with_its_model_and_log(make_world: Any) -> None:
    world = make_world(
        {"algo-1": HostScript(lines=("hello", "world"), runs_for=0.05, files={"model/m.txt": "m"})}
    )
    job = world.run("ok")
    assert job.secondary_status is SecondaryStatus.COMPLETED
    assert statuses(job) == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert model_files(world, "ok") == {"m.txt": b"m"}
    assert world.messages("ok") == ["hello", "world"]
    assert world.engine.called("remove")
    assert not (world.root / "jobs" / "ok").exists()
    schedule = world.jobs.schedule("ok")
    assert schedule is not None and schedule.queue_state is QueueState.DONE


def test_stop_sends_sigterm_and_the_artifacts_are_still_uploaded(make_world: Any) -> None:
    world = make_world({"algo-1": runs_until_signalled(files={"model/saved.txt": "s"})})
    control = StoreStopControl(world.jobs, "stop", interval=0.05)
    threading.Timer(0.3, control.request).start()
    job = world.run("stop", control=control)
    assert job.secondary_status is SecondaryStatus.STOPPED
    assert statuses(job)[-2:] == ["Stopping", "Stopped"]
    assert len(world.engine.called("terminate")) == 1
    assert world.engine.called("kill") == []
    assert model_files(world, "stop") == {"saved.txt": b"s"}


def test_a_host_that_ignores_sigterm_is_killed_after_the_grace_period(make_world: Any) -> None:
    world = make_world({"algo-1": runs_until_signalled(term_exit=None)})
    control = StoreStopControl(world.jobs, "stubborn", interval=0.05)
    threading.Timer(0.2, control.request).start()
    job = world.run("stubborn", control=control)
    assert job.secondary_status is SecondaryStatus.STOPPED
    [terminated] = world.engine.called("terminate")
    [killed] = world.engine.called("kill")
    assert GRACE <= killed - terminated < GRACE + 2.0


def test_max_runtime_ends_the_job_max_runtime_exceeded(make_world: Any) -> None:
    world = make_world({"algo-1": runs_until_signalled()})
    job = world.run("slow", StoppingCondition={"MaxRuntimeInSeconds": 1})
    assert job.secondary_status is SecondaryStatus.MAX_RUNTIME_EXCEEDED
    assert job.status.value == "Stopped"


@pytest.mark.parametrize("ending", ["stop", "max_runtime"])
def test_stop_or_max_runtime_while_inputs_download(make_world: Any, ending: str) -> None:
    world = make_world()
    control = StoreStopControl(world.jobs, "early", interval=0.05)
    extra: dict[str, Any] = {
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/big"}
                },
            }
        ]
    }
    if ending == "stop":
        threading.Thread(
            target=lambda: world.s3.downloading.wait(10) and control.request(), daemon=True
        ).start()
    else:
        extra["StoppingCondition"] = {"MaxRuntimeInSeconds": 1}
    job = world.run("early", control=control, **extra)
    expected = SecondaryStatus.STOPPED if ending == "stop" else SecondaryStatus.MAX_RUNTIME_EXCEEDED
    assert job.secondary_status is expected
    assert job.failure_reason is None
    assert world.engine.called("start") == []
    assert not (world.root / "jobs" / "early").exists()


def test_the_reason_is_the_first_failing_hosts(make_world: Any) -> None:
    world = make_world(
        {
            "algo-1": runs_until_signalled(files={"output/failure": "stopped by peer"}),
            "algo-2": HostScript(
                runs_for=0.1, exit_code=1, files={"output/failure": "ValueError: boom"}
            ),
        }
    )
    job = world.run("peer", count=2)
    assert job.secondary_status is SecondaryStatus.FAILED
    assert job.failure_reason == "AlgorithmError: ValueError: boom, exit code: 1"
    assert len(world.engine.called("terminate")) == 1


def test_out_of_memory_of_the_first_failing_host(make_world: Any) -> None:
    world = make_world(
        {
            "algo-1": runs_until_signalled(),
            "algo-2": HostScript(runs_for=0.1, oom=True),
        }
    )
    job = world.run("oom", count=2)
    assert job.failure_reason == (
        "OutOfMemoryError: Please use an instance type with more memory, or reduce the size of "
        "job data processed on an instance."
    )


def test_a_lost_host_fails_the_job_naming_it(make_world: Any) -> None:
    world = make_world(
        {"algo-1": runs_until_signalled(), "algo-2": runs_until_signalled(lost_after=0.1)}
    )
    job = world.run("lost", count=2)
    assert job.failure_reason == (
        "InternalServerError: Host algo-2 was lost while the job ran: its container no longer "
        "exists."
    )


def test_an_upload_that_fails_fails_a_completed_job(make_world: Any, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    world = make_world({"algo-1": HostScript(files={"model/m.txt": "m"})})
    job = world.run("noupload", OutputDataConfig={"S3OutputPath": f"file://{tmp_path}/a-file/out"})
    assert job.secondary_status is SecondaryStatus.FAILED
    assert job.failure_reason.startswith(
        f"ClientError: Uploading the model artifacts to file://{tmp_path}/a-file/out/noupload/"
        "output failed: "
    )
    assert "Not a directory" in job.failure_reason


def test_an_upload_that_fails_keeps_the_algorithms_reason(make_world: Any, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    world = make_world({"algo-1": HostScript(exit_code=2, files={"output/failure": "bad"})})
    job = world.run("both", OutputDataConfig={"S3OutputPath": f"file://{tmp_path}/a-file/out"})
    assert job.failure_reason == "AlgorithmError: bad, exit code: 2"
    assert any(
        "Uploading the artifacts of the failed job failed" in m for m in world.messages("both")
    )


def test_a_missing_image_is_the_clients_fault(make_world: Any) -> None:
    world = make_world()
    world.engine.missing_images = frozenset({"img"})
    job = world.run("noimage")
    assert job.failure_reason == "ClientError: The training image img is not on this machine."


def test_a_job_waits_pending_until_the_machine_has_room(make_world: Any) -> None:
    world = make_world({"algo-1": HostScript(runs_for=0.6)}, nodes=[Node("local", 2.0, 16384)])
    first = threading.Thread(target=world.run, args=("first",))
    first.start()
    deadline = time.monotonic() + 5
    while world.engine.called("start") == [] and time.monotonic() < deadline:
        time.sleep(0.02)
    second = world.run("second")
    first.join()
    assert second.secondary_status is SecondaryStatus.COMPLETED
    assert "Pending" in statuses(second)
    [first_removed, _] = world.engine.called("remove")
    [_, second_started] = world.engine.called("start")
    assert second_started >= first_removed


def test_the_server_admits_only_what_fits(make_world: Any) -> None:
    world = make_world(nodes=[Node("local", 2.0, 16384)])
    world.service.create_training_job(world.request("a"))
    world.service.create_training_job(world.request("b"))
    server = world.lifecycle("server")
    a, b = world.jobs.get("a"), world.jobs.get("b")
    assert a is not None and b is not None
    assert server.admit(a) is not None
    assert server.admit(b) is None
    assert server.admit(a) is False  # already claimed
    schedule = world.jobs.schedule("b")
    assert schedule is not None and schedule.queue_state is QueueState.QUEUED


def dead_worker_job(world: World, name: str, script: HostScript, **extra: Any) -> None:
    """A job whose worker started its container and died."""
    world.create("run:other-host:1:1", name, **extra)
    dead = world.lifecycle("run:other-host:1:1")
    job = world.jobs.get(name)
    assert job is not None
    allocation = dead.wait_for_allocation(name, StoreStopControl(world.jobs, name))
    assert allocation is not None
    world.engine.scripts = {"algo-1": script}
    spec = dead.spec(job)

    reporter = JobReporter(world.jobs, world.logs, name)
    reporter.phase(Phase.DOWNLOADING_DATA)
    mounts = world.runner.data.prepare(spec, allocation, lambda: False)
    reporter.phase(Phase.TRAINING)
    world.engine.start(world.runner._group(spec, allocation, mounts, reporter))
    world.jobs.heartbeat("run:other-host:1:1", [name], -1.0)  # its lease ran out


def test_recovery_resumes_a_job_whose_worker_died(make_world: Any) -> None:
    world = make_world()
    dead_worker_job(world, "orphan", HostScript(runs_for=0.3, files={"model/m.txt": "m"}))
    server = world.lifecycle("server")
    [schedule] = server.recover()
    job = server.resume("orphan", schedule, StoreStopControl(world.jobs, "orphan"))
    assert job.secondary_status is SecondaryStatus.COMPLETED
    assert model_files(world, "orphan") == {"m.txt": b"m"}


def test_recovery_fails_a_job_whose_containers_are_gone(make_world: Any) -> None:
    world = make_world()
    dead_worker_job(world, "gone", HostScript(runs_for=0.3))
    world.engine.remove("gone")
    server = world.lifecycle("server")
    assert server.recover() == []
    job = world.jobs.get("gone")
    assert job is not None
    assert job.failure_reason == (
        "InternalServerError: The trainforge process running this job stopped, and the job's "
        "containers are gone (the engine no longer has them). Create the job again to rerun it."
    )


def test_the_sigkill_deadline_survives_a_takeover(make_world: Any) -> None:
    world = make_world()
    dead_worker_job(world, "grace", runs_until_signalled(term_exit=None))
    world.service.stop_training_job({"TrainingJobName": "grace"})
    signalled = time.time() - GRACE + 0.2
    world.jobs.set_terminating("grace", "stop", signalled)
    world.engine.terminate("grace")
    server = world.lifecycle("server")
    [schedule] = server.recover()
    resumed = time.time()
    job = server.resume("grace", schedule, StoreStopControl(world.jobs, "grace"))
    assert job.secondary_status is SecondaryStatus.STOPPED
    [killed] = world.engine.called("kill")
    # The grace period counts from the SIGTERM the dead worker sent, not from the takeover.
    assert killed - resumed < GRACE - 0.3
    assert killed - signalled >= GRACE - 0.05


def test_a_max_runtime_ending_survives_a_takeover(make_world: Any) -> None:
    world = make_world()
    dead_worker_job(world, "late", runs_until_signalled())
    world.jobs.set_terminating("late", "max_runtime", time.time())
    world.engine.terminate("late")
    server = world.lifecycle("server")
    [schedule] = server.recover()
    job = server.resume("late", schedule, StoreStopControl(world.jobs, "late"))
    assert job.secondary_status is SecondaryStatus.MAX_RUNTIME_EXCEEDED


def test_an_engine_that_goes_away_briefly_is_waited_for(make_world: Any) -> None:
    world = make_world({"algo-1": HostScript(runs_for=0.6, lines=("a",))})
    threading.Timer(0.2, world.engine.go_away, args=(0.5,)).start()
    job = world.run("blip")
    assert job.secondary_status is SecondaryStatus.COMPLETED


def test_a_host_that_ends_while_the_engine_is_away_is_the_engines_fault(make_world: Any) -> None:
    world = make_world({"algo-1": HostScript(runs_for=0.4, exit_code=143)})
    threading.Timer(0.2, world.engine.go_away, args=(0.6,)).start()
    job = world.run("restart")
    assert job.failure_reason == (
        "InternalServerError: The container engine went away while the job ran, and algo-1 "
        "ended meanwhile (exit code 143). Create the job again to rerun it."
    )


def test_an_engine_that_stays_away_fails_the_job(make_world: Any) -> None:
    world = make_world({"algo-1": HostScript(runs_for=math.inf)})
    threading.Timer(0.2, world.engine.go_away, args=(30,)).start()
    job = world.run("dead-engine")
    assert job.failure_reason.startswith(
        "InternalServerError: The container engine (the fake engine) stopped answering for more "
        "than 1.5 s while the job ran"
    )


def test_a_stop_before_the_allocation_ends_the_job_stopped(make_world: Any) -> None:
    world = make_world(nodes=[Node("local", 2.0, 16384)])
    world.service.create_training_job(world.request("holder"))
    holder = world.jobs.get("holder")
    assert holder is not None and world.lifecycle("server").admit(holder)
    control = StoreStopControl(world.jobs, "never", interval=0.05)
    threading.Timer(0.3, control.request).start()
    job = world.run("never", control=control)
    assert job.secondary_status is SecondaryStatus.STOPPED
    assert statuses(job) == ["Starting", "Pending", "Stopping", "Stopped"]
    assert world.engine.called("start") == []


def test_a_claim_of_another_worker_is_left_alone(make_world: Any) -> None:
    world = make_world()
    world.create("server:here:1:1", "busy")
    world.jobs.insert  # noqa: B018 - the store is shared
    schedule = world.jobs.schedule("busy")
    assert schedule == Schedule(
        "busy", QueueState.CLAIMED, "server:here:1:1", schedule.lease_expires, 1
    )
    assert world.lifecycle("server").recover() == []


def test_an_engine_that_cannot_say_where_to_run_fails_trainforge_runs_job(
    make_world: Any,
) -> None:
    world = make_world()

    def no_nodes() -> list[Node]:
        raise EngineError("Docker could not list the swarm's nodes: not a swarm manager")

    world.nodes = None
    lifecycle = world.lifecycle("run")
    lifecycle.placement = Placement(no_nodes, spread=True)
    world.create("run", "nowhere")
    lifecycle.hold("nowhere")
    control = StoreStopControl(world.jobs, "nowhere")
    assert lifecycle.wait_for_allocation("nowhere", control) is None
    job = world.jobs.get("nowhere")
    assert job is not None
    assert job.failure_reason == (
        "InternalServerError: Docker could not list the swarm's nodes: not a swarm manager"
    )

"""The agent: the part of the runtime that sits next to one host on its node, run from
trainforge's own agent image (``trainforge agent-image``) by a cluster engine. Data moves on the
node, never through the server:

- ``prepare`` makes the host's /opt/ml tree under the node's work directory (mounted at
  /work), writes its config files, stages its channels (FullyReplicated: all; ShardedByS3Key: its
  shard) and restores its checkpoints, straight from the S3 endpoint it is given;
- ``collect`` reads the host's failure file and uploads its artifacts: a job of one host uploads
  them itself; in a job of several, every host but the first uploads its trees as a part, and
  then the first merges those parts with its own (later hosts win on a name clash, as on one
  machine) into ``model.tar.gz`` and ``output.tar.gz``, and removes the parts;
- ``attend`` runs beside the host while it trains (``runtime.attend``: its synced directories
  copied as they change, its Pipe channels fed; and its instance metrics read from the node's
  cgroups and printed as ``TRAINFORGE-METRICS`` lines) until the engine stops the task;
- ``cleanup`` removes the host's tree (collect does it too, when it is done).

The job comes in ``TRAINFORGE_AGENT_JOB`` (base64 JSON); S3 credentials and endpoint in the
standard AWS variables. The last line the agent prints is ``TRAINFORGE-AGENT-RESULT {json}``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from trainforge.domain.hosts import Host
from trainforge.domain.metrics import MetricPoint
from trainforge.domain.request import CreateTrainingJobRequest
from trainforge.engines.base import HostUsage
from trainforge.errors import Fault, JobFailure, StorageError
from trainforge.runtime.artifacts import Entry, merged_tree, read_failure, unpack, write_tar_gz
from trainforge.runtime.attend import HostAttendant, host_components
from trainforge.runtime.cgroup_usage import cgroup_usage
from trainforge.runtime.collect import Collector
from trainforge.runtime.dataplane import prepare_trees
from trainforge.runtime.instance_metrics import InstanceSampler, metric_line
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.staging import Stager
from trainforge.runtime.sync import flush_host
from trainforge.runtime.workspace import HostWorkspace, Workspace
from trainforge.storage.base import Download, Storage
from trainforge.storage.local import LocalStore
from trainforge.storage.location import Location, parse_location

RESULT_PREFIX = "TRAINFORGE-AGENT-RESULT "
ENV_JOB = "TRAINFORGE_AGENT_JOB"
WORK = Path("/work")
# Where an attend agent sees its node's /sys/fs/cgroup.
CGROUP_ROOT = Path("/host/sys/fs/cgroup")
PARTS_DIR = ".trainforge-parts"
# The trees a host's part carries, relative to its /opt/ml (each host copies its own synced
# directories, checkpoints among them, to their locations).
PART_TREES = ("model", "output/data")


@dataclass(frozen=True)
class AgentJob:
    spec: JobSpec
    host: Host
    root: Path  # the job's directory on the node, as the agent sees it
    part_hosts: tuple[str, ...] = ()  # the hosts whose parts the first host merges
    # The parts were uploaded before the first host's agent starts; S3 may show them late.
    parts_wait_seconds: float = 30.0
    container_id: str | None = None  # the host's container (attend: its cgroup)
    metrics_seconds: float = 0.0

    @property
    def workspace(self) -> Workspace:
        return Workspace(
            self.root, (HostWorkspace(self.host, self.root / "hosts" / self.host.name),)
        )

    @property
    def parts_prefix(self) -> Location:
        return parse_location(self.spec.output_prefix).child(PARTS_DIR)


class JobMessage(TypedDict):
    """What the server tells an agent: the job (its accepted request), the host it serves and
    where that host's tree lives on the node."""

    name: str
    arn: str
    region: str
    request: CreateTrainingJobRequest
    host: str
    root: str
    work: NotRequired[str]
    part_hosts: NotRequired[list[str]]
    parts_wait_seconds: NotRequired[float]
    container_id: NotRequired[str | None]
    metrics_seconds: NotRequired[float]


class Result(TypedDict, total=False):
    """What an agent answers, as the last line of its output: ``ok``, and what the command
    found (mounts, failure text, warnings), or why it failed (``fault``, ``reason``)."""

    ok: bool
    fault: str
    reason: str
    mounts: list[tuple[str, str, bool]]
    failure_text: str | None
    warnings: list[str]
    upload_error: str


def encode_job(data: JobMessage) -> str:
    return base64.b64encode(json.dumps(data).encode()).decode()


def decode_job(text: str) -> AgentJob:
    data: JobMessage = json.loads(base64.b64decode(text))
    spec = JobSpec.from_request(data["name"], data["arn"], data["region"], data["request"])
    host = next(h for h in spec.hosts if h.name == data["host"])
    return AgentJob(
        spec,
        host,
        Path(data.get("work", str(WORK))) / data["root"],
        tuple(data.get("part_hosts", ())),
        float(data.get("parts_wait_seconds", 30.0)),
        data.get("container_id"),
        float(data.get("metrics_seconds", 0.0)),
    )


def _storage(region: str) -> Storage:
    def s3() -> Any:
        from trainforge.storage.s3 import S3Store

        return S3Store(region)

    return Storage(s3, LocalStore())


def prepare(job: AgentJob, storage: Storage) -> Result:
    workspace = job.workspace
    workspace.create(job.spec)
    mounts = prepare_trees(Stager(storage), job.spec, workspace, lambda: False)
    return {
        "mounts": [(m.source, str(m.target), m.read_only) for m in mounts.get(job.host.name, ())]
    }


def _part_entries(hw: HostWorkspace) -> list[Entry]:
    entries: list[Entry] = []
    for tree in PART_TREES:
        path = hw.root / tree
        if not path.is_dir() or path.is_symlink():
            continue
        entries.append(Entry(tree, path, path.stat()))
        entries += [
            Entry(f"{tree}/{e.relative}", e.path, e.info, e.link_target)
            for e in merged_tree([path])
        ]
    return entries


def collect(job: AgentJob, storage: Storage) -> Result:
    hw = job.workspace.hosts[0]
    result: Result = {"failure_text": read_failure(hw.output_dir), "warnings": []}
    try:
        if len(job.spec.hosts) == 1:
            result["warnings"] = Collector(storage, job.spec, job.workspace).upload()
        else:
            result["warnings"] = flush_host(job.spec, job.workspace, hw, storage)
            if job.host.index != 1:
                _upload_part(job, hw, storage)
            else:
                result["warnings"] += _merge(job, hw, storage)
    except (StorageError, OSError, tarfile.TarError) as exc:
        result["upload_error"] = str(exc)
    finally:
        cleanup(job)
    return result


def _upload_part(job: AgentJob, hw: HostWorkspace, storage: Storage) -> None:
    archive = job.root / f"{job.host.name}.part.tar.gz"
    write_tar_gz(_part_entries(hw), archive)
    dest = job.parts_prefix.child(f"{job.host.name}.tar.gz")
    storage.store_for(dest).upload_file(archive, dest)


def _merge(job: AgentJob, hw: HostWorkspace, storage: Storage) -> list[str]:
    """The first host: every other host's part, unpacked beside its own tree, then archived
    together in host order."""
    roots = [hw]
    deadline = time.monotonic() + job.parts_wait_seconds
    by_name = {h.name: h for h in job.spec.hosts}
    for name in job.part_hosts:
        source = job.parts_prefix.child(f"{name}.tar.gz")
        archive = job.root / "parts" / f"{name}.tar.gz"
        _wait_for(source, storage, deadline)
        storage.store_for(source).download([Download(source, archive, 0)], lambda: False)
        unpacked = job.root / "parts" / name
        unpack(archive, unpacked)
        roots.append(HostWorkspace(by_name[name], unpacked))
        storage.store_for(source).delete(source)
    workspace = Workspace(job.root, tuple(sorted(roots, key=lambda r: r.host.index)))
    return Collector(storage, job.spec, workspace, flush_synced=False).upload()


def _wait_for(source: Location, storage: Storage, deadline: float) -> None:
    store = storage.store_for(source)
    while not any(info.key.endswith(source.key) for info in store.list(source)):
        if time.monotonic() >= deadline:
            raise StorageError(f"the part {source} of another host never arrived")
        time.sleep(0.2)


def attend(job: AgentJob, storage: Storage) -> Result:
    """Attend the host until the engine stops this task (SIGTERM): copy its synced
    directories while it runs. The collect step makes the final flush."""
    hw = job.workspace.hosts[0]
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    attendant = HostAttendant(
        job.host.name, host_components(job.spec, job.workspace, hw, storage)
    ).start()
    sampler = None
    if job.container_id and job.metrics_seconds > 0:
        sampler = InstanceSampler(
            _CgroupReader(job.host.name, job.container_id),
            job.spec.name,
            job.metrics_seconds,
            _print_points,
            lambda host: job.root,
            {},
        ).start()
    while not stopped.wait(1.0):
        pass
    if sampler is not None:
        sampler.stop()
    return {"warnings": attendant.stop(timeout=5.0)}


class _CgroupReader:
    """The host's use, from the node's cgroups (mounted at ``CGROUP_ROOT``)."""

    def __init__(self, host: str, container_id: str) -> None:
        self.host = host
        self.container_id = container_id

    def usage(self, job: str) -> dict[str, HostUsage]:
        found = cgroup_usage(CGROUP_ROOT, self.container_id)
        return {self.host: found} if found is not None else {}


def _print_points(points: list[MetricPoint]) -> None:
    sys.stdout.write(metric_line(points) + "\n")
    sys.stdout.flush()


def cleanup(job: AgentJob) -> Result:
    # Renamed away first, at once: an attend agent still finishing its last scan then finds no
    # tree at all, never half of one whose missing files it would delete from S3.
    doomed = job.root.with_name(f".{job.root.name}.removing-{os.getpid()}")
    try:
        os.rename(job.root, doomed)
    except OSError:
        doomed = job.root
    shutil.rmtree(doomed, ignore_errors=True)
    return {}


COMMANDS: dict[str, Callable[[AgentJob, Storage], Result]] = {
    "prepare": prepare,
    "collect": collect,
    "attend": attend,
    "cleanup": lambda job, storage: cleanup(job),
}


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    result: Result
    try:
        job = decode_job(os.environ[ENV_JOB])
        result = {"ok": True, **COMMANDS[command](job, _storage(job.spec.region))}
    except JobFailure as exc:
        result = {"ok": False, "fault": exc.fault.value, "reason": exc.reason}
    except (StorageError, OSError) as exc:
        result = {"ok": False, "fault": Fault.CLIENT.value, "reason": f"{exc}"}
    except Exception as exc:  # the server must hear of whatever broke
        result = {
            "ok": False,
            "fault": Fault.PLATFORM.value,
            "reason": f"the agent failed: {exc!r}",
        }
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

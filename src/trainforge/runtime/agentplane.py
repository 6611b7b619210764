"""The data plane of an engine whose hosts run on other machines (``spans_machines``): the work
of ``runtime.agent`` (prepare a host's /opt/ml tree, collect its artifacts, clean up), run by the
engine as a task of trainforge's agent image on each host's node, all hosts at once. The server
only starts the agents and reads their one-line results; the data goes between the nodes and
S3. Each node keeps a job's trees under ``<node_dir>/trainforge-<home>/<node>/<job>/``, laid out
as on one machine, and the hosts' containers bind-mount them from there.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from trainforge.domain.allocation import Allocation
from trainforge.engines.base import AgentTask, Engine, Mount, TaskResult
from trainforge.errors import EngineError, Fault, JobFailure, StorageCancelled
from trainforge.runtime import agent
from trainforge.runtime.attend import needs_attending
from trainforge.runtime.dataplane import Collected
from trainforge.runtime.instance_metrics import Sink as MetricSink
from trainforge.runtime.instance_metrics import parse_metric_line
from trainforge.runtime.jobspec import JobSpec

COLLECT_SECONDS = 3600.0


class AgentDataPlane:
    def __init__(
        self,
        engine: Engine,
        image: str,
        node_dir: str,
        home_label: str,
        env: Callable[[], Mapping[str, str]],
        shared_paths: tuple[str, ...] = (),
        metrics_seconds: float = 0.0,
    ) -> None:
        self.metrics_seconds = metrics_seconds
        self.engine = engine
        self.image = image
        self.node_dir = node_dir.rstrip("/") or "/"
        self.home_label = home_label
        self.env = env
        self.shared_paths = shared_paths
        self._nodes: dict[str, dict[str, str]] = {}
        self._collected: set[str] = set()

    # -- tasks ---------------------------------------------------------------------------------

    def _root(self, spec: JobSpec, node: str) -> str:
        return f"trainforge-{self.home_label}/{node}/{spec.name}"

    def _task(
        self,
        spec: JobSpec,
        host: str,
        node: str,
        command: str,
        part_hosts: list[str] | None = None,
        container_id: str | None = None,
        metrics_seconds: float | None = None,
    ) -> AgentTask:
        message: agent.JobMessage = {
            "name": spec.name,
            "arn": spec.arn,
            "region": spec.region,
            "request": spec.request,
            "host": host,
            "root": self._root(spec, node),
        }
        if part_hosts is not None:
            message["part_hosts"] = part_hosts
        if container_id is not None:
            message["container_id"] = container_id
        if metrics_seconds is not None:
            message["metrics_seconds"] = metrics_seconds
        payload = agent.encode_job(message)
        mounts = [Mount(self.node_dir, PurePosixPath(agent.WORK), False)]
        mounts += [Mount(path, PurePosixPath(path), False) for path in self.shared_paths]
        return AgentTask(
            job=spec.name,
            name=f"{command}-{host}",
            node=node,
            image=self.image,
            command=("python3", "-m", "trainforge.runtime.agent", command),
            env={**self.env(), agent.ENV_JOB: payload},
            mounts=tuple(mounts),
        )

    def _run_all(
        self,
        tasks: Mapping[str, AgentTask],
        timeout: float,
        should_stop: Callable[[], bool] | None = None,
    ) -> dict[str, agent.Result]:
        """Every task at once; each host's result line, or a failure that says what broke."""
        if not tasks:
            return {}
        with ThreadPoolExecutor(len(tasks), thread_name_prefix="agent") as pool:
            futures = {
                host: pool.submit(self.engine.run_task, task, timeout, should_stop)
                for host, task in tasks.items()
            }
            results: dict[str, agent.Result] = {}
            cancelled = False
            for host, future in futures.items():
                try:
                    results[host] = _result(future.result(), tasks[host])
                except StorageCancelled:
                    cancelled = True
                except EngineError as exc:
                    results[host] = {"ok": False, "fault": Fault.PLATFORM.value, "reason": str(exc)}
        if cancelled:
            raise StorageCancelled()
        return results

    # -- the data plane ------------------------------------------------------------------------

    def prepare(
        self, spec: JobSpec, allocation: Allocation, should_stop: Callable[[], bool]
    ) -> dict[str, tuple[Mount, ...]]:
        nodes = {h.host: h.node for h in allocation.hosts}
        self._nodes[spec.name] = nodes
        tasks = {host: self._task(spec, host, node, "prepare") for host, node in nodes.items()}
        results = self._run_all(tasks, float(spec.max_runtime_seconds), should_stop)
        for host in sorted(results, key=_index):
            result = results[host]
            if not result.get("ok"):
                raise JobFailure(Fault(result.get("fault", Fault.PLATFORM.value)), result["reason"])
        mounts: dict[str, tuple[Mount, ...]] = {}
        for host, result in results.items():
            mounts[host] = tuple(
                Mount(self._on_node(source, nodes[host]), PurePosixPath(target), bool(read_only))
                for source, target, read_only in result["mounts"]
            )
        return mounts

    def _on_node(self, path: str, node: str) -> str:
        """A path the agent saw under /work, as the node's own path."""
        inside = str(agent.WORK)
        if path == inside or path.startswith(inside + "/"):
            return self.node_dir.rstrip("/") + path[len(inside) :]
        return path

    def attend(
        self, spec: JobSpec, allocation: Allocation | None, metrics: MetricSink
    ) -> AgentAttendance:
        """An ``attend`` agent beside each host, on its node, until the hosts end; it samples
        the host's instance metrics too (the manager cannot), handed to ``metrics``."""
        nodes = (
            {h.host: h.node for h in allocation.hosts}
            if allocation is not None
            else self._nodes.get(spec.name, {})
        )
        containers: dict[str, str] = {}
        if self.metrics_seconds > 0:
            try:
                containers = self.engine.container_ids(spec.name)
            except EngineError:
                containers = {}
        if not needs_attending(spec) and not containers:
            nodes = {}
        tasks = {}
        for host, node in nodes.items():
            task = self._task(
                spec,
                host,
                node,
                "attend",
                container_id=containers.get(host),
                metrics_seconds=self.metrics_seconds,
            )
            # The node's cgroups, read-only: the host's CPU and memory use.
            cgroups = Mount("/sys/fs/cgroup", PurePosixPath(str(agent.CGROUP_ROOT)), True)
            tasks[host] = dataclasses.replace(task, mounts=(*task.mounts, cgroups))
        return AgentAttendance(
            self.engine, tasks, float(spec.max_runtime_seconds) + 3600.0, metrics
        )

    def disk_path(self, spec: JobSpec, host: str) -> Path | None:
        return None  # on the host's node, out of this process's sight

    def inputs_done(self, spec: JobSpec) -> None:
        """The agents remove a host's whole tree when they collect it."""

    def _alive(self, nodes: Mapping[str, str]) -> dict[str, str]:
        ready = {n.name for n in self.engine.nodes()}
        return {host: node for host, node in nodes.items() if node in ready}

    def collect(self, spec: JobSpec, allocation: Allocation | None) -> Collected:
        """Every host but the first uploads its part, all at once; then the first merges the
        parts that arrived with its own trees. A host whose node is gone gives no part."""
        nodes = (
            {h.host: h.node for h in allocation.hosts}
            if allocation is not None
            else self._nodes.get(spec.name, {})
        )
        alive = self._alive(nodes)
        first = next((h for h in alive if _index(h) == 1), None)
        others = {h: node for h, node in alive.items() if h != first}
        results = self._run_all(
            {h: self._task(spec, h, node, "collect") for h, node in others.items()},
            COLLECT_SECONDS,
        )
        if first is not None:
            parts = sorted(
                (h for h, r in results.items() if r.get("ok") and not r.get("upload_error")),
                key=_index,
            )
            task = self._task(spec, first, alive[first], "collect", part_hosts=parts)
            results.update(self._run_all({first: task}, COLLECT_SECONDS))
        self._collected.add(spec.name)
        collected = Collected()
        for host in sorted(results, key=_index):
            result = results[host]
            collected.failure_texts[host] = result.get("failure_text")
            collected.warnings += result.get("warnings", [])
            problem = result.get("upload_error") or (None if result.get("ok") else result["reason"])
            if problem and collected.error is None:
                collected.error = JobFailure.client(
                    f"Uploading the model artifacts to {spec.output_prefix} failed: {problem}"
                )
        return collected

    def release(self, spec: JobSpec) -> None:
        nodes = self._nodes.pop(spec.name, {})
        if spec.name in self._collected:
            self._collected.discard(spec.name)
            return
        alive = self._alive(nodes)
        self._run_all(
            {host: self._task(spec, host, node, "cleanup") for host, node in alive.items()},
            COLLECT_SECONDS,
        )


class AgentAttendance:
    """The ``attend`` agents of a job, each run by the engine from a thread of its own."""

    def __init__(
        self,
        engine: Engine,
        tasks: Mapping[str, AgentTask],
        timeout: float,
        metrics: MetricSink,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._stopping = threading.Event()
        self._warnings: list[str] = []
        self._threads = [
            threading.Thread(
                target=self._run, args=(task, timeout), name=f"attend-{host}", daemon=True
            )
            for host, task in tasks.items()
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, task: AgentTask, timeout: float) -> None:
        try:
            done = self._engine.run_task(task, timeout, self._stopping.is_set, self._line)
        except StorageCancelled:
            return
        except EngineError as exc:
            self._warnings.append(f"The agent beside {task.name[7:]} failed: {exc}")
            return
        result = _result(done, task)
        self._warnings += result.get("warnings", [])
        if not result.get("ok"):
            self._warnings.append(f"The agent beside {task.name[7:]} failed: {result['reason']}")

    def _line(self, line: str) -> None:
        points = parse_metric_line(line)
        if points:
            self._metrics(points)

    def stop(self) -> list[str]:
        self._stopping.set()
        for thread in self._threads:
            thread.join(60.0)
        return list(self._warnings)


def _index(host: str) -> int:
    return int(host.rsplit("-", 1)[-1])


def _result(done: TaskResult, task: AgentTask) -> agent.Result:
    for line in reversed(done.output.splitlines()):
        if line.startswith(agent.RESULT_PREFIX):
            parsed: agent.Result = json.loads(line[len(agent.RESULT_PREFIX) :])
            return parsed
    tail = " | ".join(done.output.splitlines()[-5:])
    return {
        "ok": False,
        "fault": Fault.PLATFORM.value,
        "reason": f"The trainforge agent {task.name} on node {task.node} ended with exit code "
        f"{done.exit_code} and no result: {tail or 'no output'}",
    }

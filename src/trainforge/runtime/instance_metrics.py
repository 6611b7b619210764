"""Samples the instance metrics SageMaker publishes for each host of a running job (dimension
``Host=<job>/algo-<i>``): CPUUtilization (percent of one CPU, so up to 100 times the CPUs, as
SageMaker counts it), MemoryUtilization (percent of the host's memory limit), DiskUtilization
(percent of the disk that holds the host's /opt/ml, where this side can see it) and, for hosts
given GPUs, GPUUtilization and GPUMemoryUtilization (summed over the host's GPUs, as SageMaker
does), read with ``nvidia-smi``.

It reads the engine (``Engine.usage``; on a swarm, the agent beside the host reads the node's
cgroups, ``runtime.cgroup_usage``, and prints the points for the server) every ``interval``
seconds from a thread of its own and hands the points to a sink; it never fails a job: an
engine that cannot see its hosts' use, or a sample that fails, only leaves points out.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from trainforge.domain import metrics
from trainforge.domain.metrics import MetricPoint, MetricSource
from trainforge.engines.base import HostUsage
from trainforge.errors import EngineError

log = logging.getLogger("trainforge.runtime")
Sink = Callable[[list[MetricPoint]], None]
METRICS_PREFIX = "TRAINFORGE-METRICS "


class UsageSource(Protocol):
    def usage(self, job: str) -> dict[str, HostUsage]: ...


def metric_line(points: list[MetricPoint]) -> str:
    """Points as one line an agent prints (the server reads them from the agent's output)."""
    return METRICS_PREFIX + json.dumps([[p.metric, p.host, p.timestamp, p.value] for p in points])


def parse_metric_line(line: str) -> list[MetricPoint]:
    """The points of a ``metric_line``; nothing for any other line."""
    if not line.startswith(METRICS_PREFIX):
        return []
    try:
        rows = json.loads(line[len(METRICS_PREFIX) :])
        return [
            MetricPoint(str(m), str(h), float(t), float(v), MetricSource.INSTANCE)
            for m, h, t, v in rows
        ]
    except (ValueError, TypeError):
        return []


def gpu_usage(ids: Sequence[str]) -> tuple[float, float] | None:
    """(utilization, memory utilization) summed over the GPUs ``ids``, in percent."""
    nvidia_smi = shutil.which("nvidia-smi")
    if not ids or nvidia_smi is None:
        return None
    try:
        out = subprocess.run(
            [
                nvidia_smi,
                f"--id={','.join(ids)}",
                "--query-gpu=utilization.gpu,memory.used,memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_gpu_usage(out)


def parse_gpu_usage(out: str) -> tuple[float, float] | None:
    utilization = memory = 0.0
    rows = 0
    for line in out.strip().splitlines():
        try:
            used, mem_used, mem_total = (float(v) for v in line.split(","))
        except ValueError:
            continue
        rows += 1
        utilization += used
        memory += 100.0 * mem_used / mem_total if mem_total else 0.0
    return (utilization, memory) if rows else None


class InstanceSampler:
    def __init__(
        self,
        engine: UsageSource,
        job: str,
        interval: float,
        sink: Sink,
        disk_of: Callable[[str], Path | None],
        gpus_of: Mapping[str, Sequence[str]],
    ) -> None:
        self._engine = engine
        self._job = job
        self._interval = interval
        self._sink = sink
        self._disk_of = disk_of
        self._gpus_of = gpus_of
        self._previous: dict[str, HostUsage] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="instance-metrics", daemon=True)

    def start(self) -> InstanceSampler:
        if self._interval > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _loop(self) -> None:
        # The first round once the hosts have settled, not while their containers start: a
        # sample asks the engine for every container's stats, work that competes with the
        # start itself, and a job over within a second is not worth a point.
        if self._stopping.wait(min(self._interval, 1.0)):
            return
        while True:
            try:
                points = self.sample()
            except NotImplementedError:
                return
            except Exception:  # a sample is never worth a job
                log.warning(
                    "job %s: sampling its instance metrics failed", self._job, exc_info=True
                )
                points = []
            if points:
                self._sink(points)
            if self._stopping.wait(self._interval):
                return

    def sample(self) -> list[MetricPoint]:
        """One round: a point per metric and running host (CPU from the second round on)."""
        try:
            usage = self._engine.usage(self._job)
        except EngineError:
            return []
        points: list[MetricPoint] = []
        for host, now in sorted(usage.items()):

            def point(name: str, value: float, host: str = host, at: float = now.at) -> None:
                points.append(MetricPoint(name, host, at, round(value, 3), MetricSource.INSTANCE))

            before = self._previous.get(host)
            self._previous[host] = now
            if before is not None and now.at > before.at:
                busy = max(now.cpu_seconds - before.cpu_seconds, 0.0)
                point(metrics.CPU_UTILIZATION, 100.0 * busy / (now.at - before.at))
            if now.memory_limit_bytes:
                point(metrics.MEMORY_UTILIZATION, 100.0 * now.memory_bytes / now.memory_limit_bytes)
            disk = self._disk_of(host)
            if disk is not None:
                try:
                    total, used, _ = shutil.disk_usage(disk)
                except OSError:
                    pass
                else:
                    point(metrics.DISK_UTILIZATION, 100.0 * used / total if total else 0.0)
            gpus = gpu_usage(self._gpus_of.get(host, ()))
            if gpus is not None:
                point(metrics.GPU_UTILIZATION, gpus[0])
                point(metrics.GPU_MEMORY_UTILIZATION, gpus[1])
        return points

"""Metrics of a training job as SageMaker publishes them to CloudWatch: the algorithm's metrics
(from ``MetricDefinitions``, dimension ``TrainingJobName``) and the instance metrics of each host
(dimension ``Host=<job>/algo-<i>``), all in namespace ``/aws/sagemaker/TrainingJobs``.

Pure names and records; the store keeps the points, the runtime produces them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

NAMESPACE = "/aws/sagemaker/TrainingJobs"
JOB_DIMENSION = "TrainingJobName"
HOST_DIMENSION = "Host"

CPU_UTILIZATION = "CPUUtilization"
MEMORY_UTILIZATION = "MemoryUtilization"
DISK_UTILIZATION = "DiskUtilization"
GPU_UTILIZATION = "GPUUtilization"
GPU_MEMORY_UTILIZATION = "GPUMemoryUtilization"
INSTANCE_METRICS = (
    CPU_UTILIZATION,
    MEMORY_UTILIZATION,
    DISK_UTILIZATION,
    GPU_UTILIZATION,
    GPU_MEMORY_UTILIZATION,
)


class MetricSource(enum.StrEnum):
    """Who produced a point: the algorithm's log (a ``MetricDefinitions`` regex) or the
    platform's sampling of a host."""

    ALGORITHM = "algorithm"
    INSTANCE = "instance"


@dataclass(frozen=True)
class MetricPoint:
    metric: str
    host: str
    timestamp: float
    value: float
    source: MetricSource = MetricSource.ALGORITHM


def host_dimension(job: str, host: str) -> str:
    """The ``Host`` dimension value of a host's instance metrics: ``<job>/algo-<i>``."""
    return f"{job}/{host}"


def regex_problem(regex: str) -> str | None:
    """Why ``regex`` cannot be a metric regex, or None."""
    try:
        re.compile(regex)
    except (re.error, RecursionError, OverflowError, ValueError) as exc:
        return str(exc)
    return None

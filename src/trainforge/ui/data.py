"""What the dashboard's pages fetch, as plain JSON-ready dicts: a page of the jobs list, one job,
the new lines of its logs, its metric series. Every read and every action is a call of the API's
operations through ``Call`` (the dispatcher: the same handlers and validation as the wire), so the
dashboard sees exactly what a client of the API sees. No HTTP here, and no store.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Callable
from typing import Any

from trainforge.domain.hosts import hosts_of
from trainforge.domain.metrics import HOST_DIMENSION, INSTANCE_METRICS, JOB_DIMENSION, NAMESPACE
from trainforge.errors import ServiceError, ValidationError

Call = Callable[[str, str, dict[str, Any]], dict[str, Any]]
"""(service, operation, params) → the operation's result; raises the API's errors."""

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
SORTS = ("CreationTime", "Name", "Status")
PAGE_SIZES = (10, 25, 50, 100)
LOG_BATCH = 2000
# Enough points for a chart a screen wide: a longer job is averaged over longer periods.
MAX_POINTS = 2000


def _duration(job: dict[str, Any], now: float) -> float | None:
    start = job.get("TrainingStartTime") or job.get("CreationTime")
    if start is None:
        return None
    end = job.get("TrainingEndTime")
    if end is None and job.get("TrainingJobStatus") not in ("InProgress", "Stopping"):
        end = job.get("LastModifiedTime")
    return float((end or now) - start)


def _row(job: dict[str, Any], now: float) -> dict[str, Any]:
    resources = job.get("ResourceConfig") or {}
    return {
        "name": job["TrainingJobName"],
        "status": job["TrainingJobStatus"],
        "secondary": job.get("SecondaryStatus", ""),
        "instanceType": resources.get("InstanceType", ""),
        "instanceCount": resources.get("InstanceCount", 0),
        "created": job.get("CreationTime"),
        "duration": _duration(job, now),
    }


def jobs_page(
    call: Call,
    status: str | None,
    search: str | None,
    sort: str,
    order: str,
    size: int,
    token: str | None,
) -> dict[str, Any]:
    """One page of ListTrainingJobs, each row completed from DescribeTrainingJob (the summary
    lacks the secondary status and the resources)."""
    if sort not in SORTS:
        raise ValidationError(f"sort must be one of {', '.join(SORTS)}.")
    if order not in ("Ascending", "Descending"):
        raise ValidationError("order must be Ascending or Descending.")
    if size not in PAGE_SIZES:
        raise ValidationError(f"size must be one of {', '.join(map(str, PAGE_SIZES))}.")
    params: dict[str, Any] = {"SortBy": sort, "SortOrder": order, "MaxResults": size}
    if status:
        params["StatusEquals"] = status
    if search:
        params["NameContains"] = search
    if token:
        params["NextToken"] = token
    listed = call("sagemaker", "ListTrainingJobs", params)
    now = time.time()
    rows = []
    for summary in listed["TrainingJobSummaries"]:
        try:
            job = call(
                "sagemaker", "DescribeTrainingJob", {"TrainingJobName": summary["TrainingJobName"]}
            )
        except ValidationError:
            continue  # deleted between the list and the describe
        rows.append(_row(job, now))
    return {"jobs": rows, "next": listed.get("NextToken")}


def job_detail(call: Call, name: str) -> dict[str, Any]:
    """DescribeTrainingJob as the job page shows it: the answer itself, plus the transitions'
    durations and whether the job can still be stopped."""
    job = call("sagemaker", "DescribeTrainingJob", {"TrainingJobName": name})
    now = time.time()
    timeline = []
    for step in job.get("SecondaryStatusTransitions") or []:
        end = step.get("EndTime")
        timeline.append(
            {
                "status": step["Status"],
                "start": step["StartTime"],
                "end": end,
                "seconds": (end or now) - step["StartTime"],
                "message": step.get("StatusMessage", ""),
            }
        )
    return {
        "describe": job,
        "timeline": timeline,
        "duration": _duration(job, now),
        "stoppable": job["TrainingJobStatus"] == "InProgress"
        and job.get("SecondaryStatus") not in ("Stopping",),
        "request": request_of(job),
    }


# The members of DescribeTrainingJob that a CreateTrainingJob request takes back.
_REQUEST_MEMBERS = (
    "TrainingJobName",
    "HyperParameters",
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "VpcConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
    "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining",
    "CheckpointConfig",
    "DebugHookConfig",
    "DebugRuleConfigurations",
    "TensorBoardOutputConfig",
    "ExperimentConfig",
    "ProfilerConfig",
    "Environment",
    "RetryStrategy",
    "RemoteDebugConfig",
    "InfraCheckConfig",
    "SessionChainingConfig",
)


def request_of(job: dict[str, Any]) -> dict[str, Any]:
    """The CreateTrainingJob request that makes this job again (what 'run again' starts from)."""
    return {k: job[k] for k in _REQUEST_MEMBERS if k in job}


def _decode_cursor(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, binascii.Error):
        raise ValidationError("cursor is not one this server gave.") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError("cursor is not one this server gave.")
    return value


def log_tail(call: Call, name: str, cursor: str | None) -> dict[str, Any]:
    """The log lines of every host of the job after ``cursor`` (each host's last LOG_BATCH
    lines without one), oldest first, and the cursor to ask with next: GetLogEvents' forward
    token per stream. ``earlier``: some host has lines before those."""
    positions = _decode_cursor(cursor)
    streams: list[str] = []
    token: str | None = None
    prefix = f"{name}/"
    for _ in range(100):
        params: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": prefix}
        if token:
            params["nextToken"] = token
        try:
            found = call("logs", "DescribeLogStreams", params)
        except ServiceError:
            break  # no job has logged yet: no log group
        streams += [s["logStreamName"] for s in found.get("logStreams", [])]
        token = found.get("nextToken")
        if not token:
            break
    lines: list[dict[str, Any]] = []
    more = earlier = False
    for stream in streams:
        params = {"logGroupName": LOG_GROUP, "logStreamName": stream, "limit": LOG_BATCH}
        if stream in positions:
            params["nextToken"] = positions[stream]
        # else: a stream seen for the first time is read from its end, as a tail does (its
        # newest LOG_BATCH lines), and followed forward from there.
        got = call("logs", "GetLogEvents", params)
        events = got.get("events", [])
        if stream in positions:
            more = more or len(events) >= LOG_BATCH
        else:
            earlier = earlier or len(events) >= LOG_BATCH
        # SageMaker names a host's stream <job>/algo-<i>-<epoch seconds>.
        host = "-".join(stream[len(prefix) :].split("-")[:2]) or stream
        for event in events:
            lines.append(
                {
                    "host": host,
                    "stream": stream,
                    "t": event["timestamp"],
                    "m": event["message"],
                }
            )
        positions[stream] = got["nextForwardToken"]
    lines.sort(key=lambda line: line["t"])
    encoded = base64.urlsafe_b64encode(json.dumps(positions).encode()).decode()
    return {"lines": lines, "cursor": encoded, "more": more, "earlier": earlier}


def _period(seconds: float) -> int:
    """The shortest period CloudWatch allows (1, 5, 10, 30 s, then whole minutes) that gives at
    most MAX_POINTS points over ``seconds``."""
    for period in (1, 5, 10, 30):
        if seconds / period <= MAX_POINTS:
            return period
    return 60 * max(1, math.ceil(seconds / MAX_POINTS / 60))


def metrics(call: Call, name: str) -> dict[str, Any]:
    """Every series of the job (its MetricDefinitions' and its hosts' instance metrics), each
    point the average of a period (one second for a job of up to half an hour), from the job's
    creation to now."""
    job = call("sagemaker", "DescribeTrainingJob", {"TrainingJobName": name})
    start = float(job["CreationTime"])
    end = time.time() + 1
    if end - start < 1:
        start = end - 1
    wanted: list[dict[str, Any]] = []
    for metric in (job.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []:
        wanted.append(
            {
                "MetricName": metric["Name"],
                "Dimensions": [{"Name": JOB_DIMENSION, "Value": name}],
            }
        )
    # Each host's instance series, asked for by name: a series nobody published comes back
    # empty, as CloudWatch answers (and is left out below).
    for instance in hosts_of(request_of(job)).hosts:
        for metric_name in INSTANCE_METRICS:
            wanted.append(
                {
                    "MetricName": metric_name,
                    "Dimensions": [{"Name": HOST_DIMENSION, "Value": f"{name}/{instance.name}"}],
                }
            )
    period = _period(end - start)
    series = []
    for chunk in range(0, len(wanted), 500):
        queries = [
            {
                "Id": f"m{i}",
                "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, **metric},
                    "Period": period,
                    "Stat": "Average",
                },
            }
            for i, metric in enumerate(wanted[chunk : chunk + 500], start=chunk)
        ]
        got = call(
            "cloudwatch",
            "GetMetricData",
            {
                "MetricDataQueries": queries,
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
                "MaxDatapoints": 100_000,
            },
        )
        for result in got["MetricDataResults"]:
            metric = wanted[int(result["Id"][1:])]
            host = next(
                (d["Value"] for d in metric["Dimensions"] if d["Name"] == HOST_DIMENSION), None
            )
            stamps, values = result["Timestamps"], result["Values"]
            if host and not stamps:
                continue
            series.append(
                {
                    "name": metric["MetricName"],
                    "host": host.split("/", 1)[1] if host else None,
                    "t": stamps,
                    "v": values,
                }
            )
    return {"series": series}

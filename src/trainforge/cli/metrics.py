"""``trainforge metrics JOB``: a job's metrics, read through the CloudWatch API as any client
reads them (ListMetrics for the job's series, GetMetricData for their points), from the local
store or from the server TRAINFORGE_SERVER_URL names.

Points are read per second (Period 1): the series shows one value per second that had points
(their average), ``POINTS`` counts every point. Algorithm metrics are one series per job, instance
metrics one per host.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from trainforge.cli.client import Client
from trainforge.cli.output import print_table
from trainforge.domain.metrics import HOST_DIMENSION, JOB_DIMENSION, NAMESPACE

# GetMetricData takes at most 500 queries; each series needs two.
_SERIES_PER_CALL = 250


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).isoformat()


def _host_count(job: dict[str, Any]) -> int:
    resources = job.get("ResourceConfig") or {}
    groups = resources.get("InstanceGroups") or []
    return int(resources.get("InstanceCount") or sum(int(g["InstanceCount"]) for g in groups))


def _list(client: Client, dimension: dict[str, str]) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"Namespace": NAMESPACE, "Dimensions": [dimension]}
    found: list[dict[str, Any]] = []
    while True:
        page = client.call("cloudwatch", "ListMetrics", params)
        found += page.get("Metrics", [])
        if not page.get("NextToken"):
            return found
        params["NextToken"] = page["NextToken"]


def _query(ident: str, metric: dict[str, Any], stat: str) -> dict[str, Any]:
    return {"Id": ident, "MetricStat": {"Metric": metric, "Period": 1, "Stat": stat}}


def _fetch(
    client: Client, metrics: list[dict[str, Any]], start: float, end: float
) -> dict[str, tuple[list[float], list[float]]]:
    """Every query's (timestamps, values), all pages of it."""
    queries = []
    for index, metric in enumerate(metrics):
        queries += [
            _query(f"avg{index}", metric, "Average"),
            _query(f"n{index}", metric, "SampleCount"),
        ]
    params: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }
    series: dict[str, tuple[list[float], list[float]]] = {}
    while True:
        page = client.call("cloudwatch", "GetMetricData", params)
        for result in page.get("MetricDataResults", []):
            stamps, values = series.setdefault(result["Id"], ([], []))
            stamps += [_epoch(t) for t in result.get("Timestamps", [])]
            values += [float(v) for v in result.get("Values", [])]
        if not page.get("NextToken"):
            return series
        params["NextToken"] = page["NextToken"]


def job_metrics(client: Client, name: str) -> list[dict[str, Any]]:
    job = client.call("sagemaker", "DescribeTrainingJob", {"TrainingJobName": name})
    metrics = _list(client, {"Name": JOB_DIMENSION, "Value": name})
    for index in range(1, _host_count(job) + 1):
        metrics += _list(client, {"Name": HOST_DIMENSION, "Value": f"{name}/algo-{index}"})
    start = _epoch(job["CreationTime"]) - 1
    end = max(_epoch(job.get("TrainingEndTime") or 0), time.time()) + 1
    rows: list[dict[str, Any]] = []
    for first in range(0, len(metrics), _SERIES_PER_CALL):
        batch = metrics[first : first + _SERIES_PER_CALL]
        fetched = _fetch(client, batch, start, end)
        for index, metric in enumerate(batch):
            stamps, values = fetched.get(f"avg{index}", ([], []))
            counts = fetched.get(f"n{index}", ([], []))[1]
            dimension = metric["Dimensions"][0]
            row: dict[str, Any] = {"MetricName": metric["MetricName"]}
            if dimension["Name"] == HOST_DIMENSION:
                row["Host"] = dimension["Value"].rsplit("/", 1)[1]
            row["Dimensions"] = metric["Dimensions"]
            row["Points"] = int(sum(counts))
            if stamps:
                row["LastValue"] = values[-1]
                row["LastTimestamp"] = _iso(stamps[-1])
            row["Series"] = [
                {"Timestamp": _iso(t), "Value": v} for t, v in zip(stamps, values, strict=True)
            ]
            rows.append(row)
    return rows


def cmd_metrics(client: Client, name: str, as_json: bool) -> int:
    rows = job_metrics(client, name)
    if as_json:
        print(json.dumps({"TrainingJobName": name, "Metrics": rows}, indent=4))
        return 0
    print_table(
        [
            [
                r["MetricName"],
                r.get("Host", "-"),
                f"{r['LastValue']:g}" if "LastValue" in r else "-",
                str(r["Points"]),
                r.get("LastTimestamp", "-"),
            ]
            for r in rows
        ],
        ["METRIC", "HOST", "LAST", "POINTS", "LAST TIMESTAMP"],
    )
    return 0

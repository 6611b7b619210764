"""CloudWatch metrics semantics over the stored metric points: GetMetricStatistics, GetMetricData
and ListMetrics for namespace ``/aws/sagemaker/TrainingJobs``, as SageMaker publishes there.

A series is named the way SageMaker names it: an algorithm metric by the single dimension
``TrainingJobName=<job>``, an instance metric by the single dimension ``Host=<job>/algo-<i>``.
Any other namespace or set of dimensions names no series, and gets empty results, not an error,
as CloudWatch answers for metrics nobody published. Algorithm metrics carry the unit ``None`` and
instance metrics ``Percent``; asking for another unit finds no data, as CloudWatch does.

Error codes and texts follow CloudWatch where they are known (docs/metrics.md lists them); the
arithmetic lives in ``statistics``. Nothing here writes.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainforge.domain.metrics import (
    HOST_DIMENSION,
    JOB_DIMENSION,
    NAMESPACE,
    MetricSource,
    host_dimension,
)
from trainforge.errors import (
    MetricsInvalidNextToken,
    MetricsInvalidParameterCombination,
    MetricsInvalidParameterValue,
    MetricsValidationError,
)
from trainforge.service import statistics
from trainforge.store.metrics import MetricStore, SeriesName

MAX_STATISTICS_DATAPOINTS = 1440
MAX_METRIC_DATA_QUERIES = 500
DEFAULT_MAX_DATAPOINTS = 100_800
LIST_PAGE_SIZE = 500
RECENTLY_ACTIVE_SECONDS = 3 * 3600
UNITS = {MetricSource.ALGORITHM: "None", MetricSource.INSTANCE: "Percent"}
_ID_FIRST = "abcdefghijklmnopqrstuvwxyz"
_ID_CHARS = frozenset(_ID_FIRST + _ID_FIRST.upper() + "0123456789_")


@dataclass(frozen=True)
class Series:
    job: str
    metric: str
    source: MetricSource
    host: str | None = None

    @classmethod
    def of(cls, name: SeriesName) -> Series:
        return cls(name.job, name.metric, name.source, name.host)

    @property
    def unit(self) -> str:
        return UNITS[self.source]

    def dimensions(self) -> list[dict[str, str]]:
        if self.source is MetricSource.INSTANCE:
            return [{"Name": HOST_DIMENSION, "Value": host_dimension(self.job, self.host or "")}]
        return [{"Name": JOB_DIMENSION, "Value": self.job}]

    def wire(self) -> dict[str, Any]:
        return {"Namespace": NAMESPACE, "MetricName": self.metric, "Dimensions": self.dimensions()}


def resolve(namespace: str, metric: str, dimensions: list[dict[str, str]]) -> Series | None:
    """The series a metric's name and dimensions name, or None."""
    if namespace != NAMESPACE or len(dimensions) != 1:
        return None
    name, value = dimensions[0].get("Name"), dimensions[0].get("Value", "")
    if name == JOB_DIMENSION:
        return Series(value, metric, MetricSource.ALGORITHM)
    if name == HOST_DIMENSION and "/" in value:
        job, host = value.rsplit("/", 1)
        return Series(job, metric, MetricSource.INSTANCE, host)
    return None


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _decode_token(token: str | None) -> int | None:
    """The offset a token of ours holds; None for no token; -1 for a token that is not ours."""
    if token is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = data["o"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        return -1
    valid = isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0
    return int(offset) if valid else -1


class MetricsService:
    def __init__(self, metrics: MetricStore, now: Callable[[], float] = time.time) -> None:
        self.metrics = metrics
        self.now = now

    def _values(self, series: Series | None, start: float, end: float) -> list[tuple[float, float]]:
        if series is None:
            return []
        points = self.metrics.points(
            series.job, series.metric, series.source, series.host, start, end
        )
        return [(p.timestamp, p.value) for p in points]

    # -- GetMetricStatistics -------------------------------------------------------------------

    def get_metric_statistics(self, params: dict[str, Any]) -> dict[str, Any]:
        stats: list[str] = params.get("Statistics") or []
        extended: list[str] = params.get("ExtendedStatistics") or []
        if not stats and not extended:
            raise MetricsInvalidParameterCombination(
                "Must specify either Statistics or ExtendedStatistics"
            )
        if stats and extended:
            raise MetricsInvalidParameterCombination(
                "Must specify either Statistics or ExtendedStatistics, but not both"
            )
        for name in extended:
            if statistics.percentile_of(name) is None:
                raise MetricsInvalidParameterValue(
                    f"The value {name} for parameter ExtendedStatistics is not supported."
                )
        period = int(params["Period"])
        if not statistics.period_allowed(period):
            raise MetricsInvalidParameterValue(
                "The parameter Period must be 1, 5, 10, 20, 30 or a multiple of 60."
            )
        start, end = int(params["StartTime"]), int(params["EndTime"])
        if start == end:
            raise MetricsInvalidParameterValue(
                "The parameter StartTime must not equal parameter EndTime."
            )
        if start > end:
            raise MetricsInvalidParameterValue(
                "The parameter StartTime must be less than the parameter EndTime."
            )
        first = statistics.aligned_start(params["StartTime"], period, self.now())
        requested = statistics.period_count(first, params["EndTime"], period)
        if requested > MAX_STATISTICS_DATAPOINTS:
            raise MetricsInvalidParameterCombination(
                f"You have requested up to {requested:,} datapoints, which exceeds the limit of "
                f"{MAX_STATISTICS_DATAPOINTS:,}. You may reduce the datapoints requested by "
                "increasing Period, or decreasing the time range."
            )
        metric = params["MetricName"]
        series = resolve(params["Namespace"], metric, params.get("Dimensions") or [])
        unit = params.get("Unit")
        if series is not None and unit is not None and unit != series.unit:
            series = None
        if series is None:
            return {"Label": metric, "Datapoints": []}
        values = self._values(series, first, params["EndTime"])
        datapoints = []
        for stamp, group in statistics.bucket(values, first, params["EndTime"], period):
            point: dict[str, Any] = {"Timestamp": stamp}
            for name in stats:
                point[name] = statistics.compute(name, group)
            if extended:
                point["ExtendedStatistics"] = {
                    name: statistics.compute(name, group) for name in extended
                }
            point["Unit"] = series.unit
            datapoints.append(point)
        return {"Label": metric, "Datapoints": datapoints}

    # -- GetMetricData -------------------------------------------------------------------------

    def get_metric_data(self, params: dict[str, Any]) -> dict[str, Any]:
        start, end = int(params["StartTime"]), int(params["EndTime"])
        if start == end:
            raise MetricsValidationError(
                "The parameter StartTime must not equal parameter EndTime."
            )
        if start > end:
            raise MetricsValidationError("The parameter EndTime must be greater than StartTime.")
        queries: list[dict[str, Any]] = params["MetricDataQueries"]
        if len(queries) > MAX_METRIC_DATA_QUERIES:
            raise MetricsValidationError(
                f"The collection MetricDataQueries must not have a size greater than "
                f"{MAX_METRIC_DATA_QUERIES}."
            )
        if params.get("MaxDatapoints", 1) < 1:
            raise MetricsValidationError("The parameter MaxDatapoints must be greater than 0.")
        for index, query in enumerate(queries, start=1):
            self._check_query(index, query, queries)
        offset = _decode_token(params.get("NextToken"))
        if offset == -1:
            raise MetricsInvalidNextToken("The NextToken is not valid.")
        skip = offset or 0
        budget = limit = int(params.get("MaxDatapoints", DEFAULT_MAX_DATAPOINTS))
        descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        results: list[dict[str, Any]] = []
        seen = 0
        more = False
        for query in queries:
            if query.get("ReturnData") is False:
                continue
            stamps, values = self._query_values(query, params["StartTime"], params["EndTime"])
            if descending:
                stamps.reverse()
                values.reverse()
            begin = min(max(skip - seen, 0), len(stamps))
            stop = min(len(stamps), begin + budget)
            seen += len(stamps)
            budget -= stop - begin
            partial = stop < len(stamps)
            more = more or partial
            results.append(
                {
                    "Id": query["Id"],
                    "Label": query.get("Label") or query["MetricStat"]["Metric"]["MetricName"],
                    "Timestamps": stamps[begin:stop],
                    "Values": values[begin:stop],
                    "StatusCode": "PartialData" if partial else "Complete",
                }
            )
        answer: dict[str, Any] = {"MetricDataResults": results, "Messages": []}
        if more:
            answer["NextToken"] = _encode_token(skip + limit - budget)
        return answer

    def _check_query(
        self, index: int, query: dict[str, Any], queries: list[dict[str, Any]]
    ) -> None:
        where = f"MetricDataQueries.member.{index}"
        ident = query["Id"]
        if ident[0] not in _ID_FIRST or not set(ident) <= _ID_CHARS:
            raise MetricsValidationError(
                f"The value {ident} for parameter {where}.Id is not valid: it must start with a "
                "lowercase letter and hold only letters, numbers and underscores."
            )
        if sum(1 for other in queries if other["Id"] == ident) > 1:
            raise MetricsValidationError(
                f"The value {ident} for parameter {where}.Id is used by more than one query."
            )
        if "Expression" in query:
            raise MetricsValidationError(
                f"The parameter {where}.Expression is not supported: trainforge evaluates no "
                "metric math or Metrics Insights queries, only MetricStat."
            )
        stat = query.get("MetricStat")
        if stat is None:
            raise MetricsValidationError(f"The parameter {where}.MetricStat is required.")
        for member in ("Namespace", "MetricName"):
            if not stat["Metric"].get(member):
                raise MetricsValidationError(
                    f"The parameter {where}.MetricStat.Metric.{member} is required."
                )
        if not statistics.is_statistic(stat["Stat"]):
            raise MetricsValidationError(
                f"The value {stat['Stat']} for parameter {where}.MetricStat.Stat is not supported."
            )
        if not statistics.period_allowed(int(stat["Period"])):
            raise MetricsValidationError(
                f"The parameter {where}.MetricStat.Period must be 1, 5, 10, 20, 30 or a "
                "multiple of 60."
            )

    def _query_values(
        self, query: dict[str, Any], start: float, end: float
    ) -> tuple[list[float], list[float]]:
        stat = query["MetricStat"]
        metric = stat["Metric"]
        period = int(stat["Period"])
        series = resolve(metric["Namespace"], metric["MetricName"], metric.get("Dimensions") or [])
        if series is not None and stat.get("Unit") not in (None, series.unit):
            series = None
        first = statistics.aligned_start(start, period, self.now())
        buckets = statistics.bucket(self._values(series, first, end), first, end, period)
        return (
            [stamp for stamp, _ in buckets],
            [statistics.compute(stat["Stat"], group) for _, group in buckets],
        )

    # -- ListMetrics ---------------------------------------------------------------------------

    def list_metrics(self, params: dict[str, Any]) -> dict[str, Any]:
        offset = _decode_token(params.get("NextToken"))
        if offset == -1:
            raise MetricsInvalidParameterValue("Request parameter NextToken is invalid")
        namespace = params.get("Namespace")
        if namespace not in (None, NAMESPACE):
            return {"Metrics": []}
        filters: list[dict[str, str]] = params.get("Dimensions") or []
        job = None
        for item in filters:
            value = item.get("Value")
            if value is not None and item["Name"] == JOB_DIMENSION:
                job = value
            elif value is not None and item["Name"] == HOST_DIMENSION:
                job = value.rsplit("/", 1)[0]
        found = self.metrics.series_last_seen(job=job, metric=params.get("MetricName"))
        since = self.now() - RECENTLY_ACTIVE_SECONDS if params.get("RecentlyActive") else None
        metrics = []
        for name, last_seen in found:
            if since is not None and last_seen < since:
                continue
            series = Series.of(name)
            if all(_matches(series, item) for item in filters):
                metrics.append(series.wire())
        skip = offset or 0
        answer: dict[str, Any] = {"Metrics": metrics[skip : skip + LIST_PAGE_SIZE]}
        if skip + LIST_PAGE_SIZE < len(metrics):
            answer["NextToken"] = _encode_token(skip + LIST_PAGE_SIZE)
        return answer


def _matches(series: Series, wanted: dict[str, str]) -> bool:
    return any(
        dimension["Name"] == wanted["Name"] and wanted.get("Value") in (None, dimension["Value"])
        for dimension in series.dimensions()
    )

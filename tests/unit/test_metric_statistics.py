"""service.statistics (CloudWatch's periods, start rounding, bucketing and statistics) and
service.metrics over a real MetricStore: series names, units, pagination and the error texts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trainforge.domain.metrics import MetricPoint, MetricSource
from trainforge.errors import (
    MetricsInvalidNextToken,
    MetricsInvalidParameterCombination,
    MetricsInvalidParameterValue,
    MetricsValidationError,
)
from trainforge.service import statistics
from trainforge.service.metrics import MetricsService
from trainforge.store.db import Database
from trainforge.store.metrics import MetricStore

NS = "/aws/sagemaker/TrainingJobs"
# A whole minute, so the test's own arithmetic of periods stays simple.
T0 = 1_700_000_040.0
NOW = T0 + 3600
DAY = 86400.0


def test_periods_cloudwatch_allows() -> None:
    allowed = [p for p in range(1, 400) if statistics.period_allowed(p)]
    assert allowed == [1, 5, 10, 20, 30, 60, 120, 180, 240, 300, 360]
    assert not statistics.period_allowed(0)


@pytest.mark.parametrize(
    ("offset", "period", "age", "expected_offset"),
    [
        (37.9, 1, 0, 37),  # a whole second
        (37.9, 10, 0, 30),  # an even division of the minute
        (37.9, 30, 0, 30),
        (37.9, 60, 0, 0),  # the whole minute
        (37.9 + 240, 60, 20 * DAY, 60),  # 15 to 63 days ago: 5 minutes (T0 is 22:14)
        (37.9, 3600, 70 * DAY, -840),  # past 63 days: the hour
    ],
)
def test_start_rounding(offset: float, period: int, age: float, expected_offset: float) -> None:
    start = T0 + offset
    assert statistics.aligned_start(start, period, start + age) == T0 + expected_offset


def test_bucketing_keeps_start_inclusive_end_exclusive_and_skips_empty_periods() -> None:
    points = [(T0 - 1, 100.0), (T0, 1.0), (T0 + 59.9, 2.0), (T0 + 130, 3.0), (T0 + 180, 4.0)]
    assert statistics.bucket(points, T0, T0 + 180, 60) == [(T0, [1.0, 2.0]), (T0 + 120, [3.0])]
    assert statistics.period_count(T0, T0 + 180, 60) == 3
    assert statistics.period_count(T0, T0 + 181, 60) == 4


def test_statistics_of_a_period() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert statistics.compute("SampleCount", values) == 4
    assert statistics.compute("Sum", values) == 10
    assert statistics.compute("Average", values) == 2.5
    assert statistics.compute("Minimum", values) == 1
    assert statistics.compute("Maximum", values) == 4
    # Nearest rank: a value of the sample.
    assert statistics.compute("p50", values) == 2
    assert statistics.compute("p75", values) == 3
    assert statistics.compute("p99.99", values) == 4
    assert statistics.compute("p0", values) == 1
    assert statistics.is_statistic("p100") and statistics.is_statistic("p12.5")
    for bad in ("p101", "p1.234", "P50", "median", "tm90", ""):
        assert not statistics.is_statistic(bad)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetricStore]:
    db = Database(tmp_path / "trainforge.db")
    yield MetricStore(db)
    db.close()


@pytest.fixture
def service(store: MetricStore) -> MetricsService:
    loss = [MetricPoint("loss", "algo-1", T0 + 10 * i, float(i)) for i in range(12)]
    cpu = [
        MetricPoint("CPUUtilization", host, T0 + 30 * i, base + i, MetricSource.INSTANCE)
        for host, base in (("algo-1", 10.0), ("algo-2", 70.0))
        for i in range(4)
    ]
    store.append("job-a", [*loss, *cpu])
    store.append("job-b", [MetricPoint("loss", "algo-1", T0 - 2 * DAY, 9.0)])
    return MetricsService(store, now=lambda: NOW)


def stats_request(**extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "Namespace": NS,
        "MetricName": "loss",
        "Dimensions": [{"Name": "TrainingJobName", "Value": "job-a"}],
        "StartTime": T0 + 5,
        "EndTime": T0 + 600,
        "Period": 60,
        "Statistics": ["SampleCount", "Average", "Sum", "Minimum", "Maximum"],
    }
    request.update(extra)
    return request


def test_get_metric_statistics_per_period(service: MetricsService) -> None:
    answer = service.get_metric_statistics(stats_request())
    assert answer["Label"] == "loss"
    # The start T0+5 is rounded down to T0: values 0..5 fall in the first minute, 6..11 next.
    first, second = range(6), range(6, 12)
    assert answer["Datapoints"] == [
        {
            "Timestamp": T0 + 60 * n,
            "SampleCount": float(len(group)),
            "Average": sum(group) / len(group),
            "Sum": float(sum(group)),
            "Minimum": float(min(group)),
            "Maximum": float(max(group)),
            "Unit": "None",
        }
        for n, group in enumerate((first, second))
    ]
    extended = service.get_metric_statistics(
        stats_request(Statistics=None, ExtendedStatistics=["p50"])
    )
    assert [d["ExtendedStatistics"] for d in extended["Datapoints"]] == [{"p50": 2.0}, {"p50": 8.0}]


def test_instance_metrics_by_host_and_what_names_no_series(service: MetricsService) -> None:
    host = [{"Name": "Host", "Value": "job-a/algo-2"}]
    answer = service.get_metric_statistics(
        stats_request(MetricName="CPUUtilization", Dimensions=host, Statistics=["Maximum"])
    )
    assert [(d["Timestamp"], d["Maximum"], d["Unit"]) for d in answer["Datapoints"]] == [
        (T0, 71.0, "Percent"),
        (T0 + 60, 73.0, "Percent"),
    ]
    for other in (
        stats_request(Namespace="AWS/EC2"),
        stats_request(Dimensions=[]),
        stats_request(Dimensions=[{"Name": "TrainingJobName", "Value": "job-zzz"}]),
        stats_request(
            Dimensions=[
                {"Name": "TrainingJobName", "Value": "job-a"},
                {"Name": "Host", "Value": "job-a/algo-1"},
            ]
        ),
        stats_request(Unit="Percent"),
        stats_request(MetricName="CPUUtilization", Dimensions=host, Unit="None"),
    ):
        assert service.get_metric_statistics(other)["Datapoints"] == [], other


@pytest.mark.parametrize(
    ("change", "error", "text"),
    [
        (
            {"Statistics": None},
            MetricsInvalidParameterCombination,
            "Must specify either Statistics or ExtendedStatistics",
        ),
        (
            {"ExtendedStatistics": ["p50"]},
            MetricsInvalidParameterCombination,
            "Must specify either Statistics or ExtendedStatistics, but not both",
        ),
        (
            {"Statistics": None, "ExtendedStatistics": ["p200"]},
            MetricsInvalidParameterValue,
            "The value p200 for parameter ExtendedStatistics is not supported.",
        ),
        (
            {"Period": 45},
            MetricsInvalidParameterValue,
            "The parameter Period must be 1, 5, 10, 20, 30 or a multiple of 60.",
        ),
        (
            {"EndTime": T0 + 5.5},
            MetricsInvalidParameterValue,
            "The parameter StartTime must not equal parameter EndTime.",
        ),
        (
            {"EndTime": T0},
            MetricsInvalidParameterValue,
            "The parameter StartTime must be less than the parameter EndTime.",
        ),
        (
            {"Period": 1, "EndTime": T0 + 2000},
            MetricsInvalidParameterCombination,
            "You have requested up to 1,995 datapoints, which exceeds the limit of 1,440. You "
            "may reduce the datapoints requested by increasing Period, or decreasing the time "
            "range.",
        ),
    ],
)
def test_get_metric_statistics_refusals(
    service: MetricsService, change: dict[str, Any], error: type[Exception], text: str
) -> None:
    request = {k: v for k, v in stats_request(**change).items() if v is not None}
    with pytest.raises(error) as caught:
        service.get_metric_statistics(request)
    assert str(caught.value) == text


def query(ident: str, metric: str, dimension: dict[str, str], stat: str, period: int = 60) -> Any:
    return {
        "Id": ident,
        "MetricStat": {
            "Metric": {"Namespace": NS, "MetricName": metric, "Dimensions": [dimension]},
            "Period": period,
            "Stat": stat,
        },
    }


def test_get_metric_data_order_labels_and_pages(service: MetricsService) -> None:
    job = {"Name": "TrainingJobName", "Value": "job-a"}
    host = {"Name": "Host", "Value": "job-a/algo-1"}
    queries = [
        query("loss", "loss", job, "Average", period=20),
        {**query("cpu", "CPUUtilization", host, "Minimum"), "Label": "cpu of algo-1"},
        {**query("hidden", "loss", job, "Sum"), "ReturnData": False},
    ]
    request = {"MetricDataQueries": queries, "StartTime": T0, "EndTime": T0 + 600}
    answer = service.get_metric_data({**request, "ScanBy": "TimestampAscending"})
    loss, cpu = answer["MetricDataResults"]
    assert loss["Label"] == "loss" and cpu["Label"] == "cpu of algo-1"
    assert loss["Timestamps"] == [T0 + 20 * n for n in range(6)]
    assert loss["Values"] == [(2 * n + 2 * n + 1) / 2 for n in range(6)]
    assert (cpu["Timestamps"], cpu["Values"]) == ([T0, T0 + 60], [10.0, 12.0])
    assert {loss["StatusCode"], cpu["StatusCode"]} == {"Complete"}
    assert "NextToken" not in answer
    # Newest first by default; pages of MaxDatapoints, in the same order, until no token.
    seen: list[tuple[str, float]] = []
    page_request: dict[str, Any] = {**request, "MaxDatapoints": 3}
    for _ in range(10):
        page = service.get_metric_data(page_request)
        for result in page["MetricDataResults"]:
            seen += [(result["Id"], t) for t in result["Timestamps"]]
        if "NextToken" not in page:
            break
        page_request["NextToken"] = page["NextToken"]
    assert seen == [("loss", T0 + 20 * n) for n in reversed(range(6))] + [
        ("cpu", T0 + 60),
        ("cpu", T0),
    ]
    with pytest.raises(MetricsInvalidNextToken):
        service.get_metric_data({**request, "NextToken": "garbage"})


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"EndTime": T0}, "The parameter StartTime must not equal parameter EndTime."),
        ({"EndTime": T0 - 60}, "The parameter EndTime must be greater than StartTime."),
        ({"MaxDatapoints": 0}, "The parameter MaxDatapoints must be greater than 0."),
        (
            {
                "MetricDataQueries": [
                    query(f"m{i}", "loss", {"Name": "x", "Value": "y"}, "Sum") for i in range(501)
                ]
            },
            "The collection MetricDataQueries must not have a size greater than 500.",
        ),
        (
            {"MetricDataQueries": [{"Id": "e1", "Expression": "SUM(METRICS())"}]},
            "The parameter MetricDataQueries.member.1.Expression is not supported: trainforge "
            "evaluates no metric math or Metrics Insights queries, only MetricStat.",
        ),
        (
            {"MetricDataQueries": [{"Id": "m1"}]},
            "The parameter MetricDataQueries.member.1.MetricStat is required.",
        ),
        (
            {"MetricDataQueries": [query("Bad", "loss", {"Name": "x", "Value": "y"}, "Sum")]},
            "The value Bad for parameter MetricDataQueries.member.1.Id is not valid: it must "
            "start with a lowercase letter and hold only letters, numbers and underscores.",
        ),
        (
            {"MetricDataQueries": [query("m", "loss", {"Name": "x", "Value": "y"}, "median")]},
            "The value median for parameter MetricDataQueries.member.1.MetricStat.Stat is not "
            "supported.",
        ),
    ],
)
def test_get_metric_data_refusals(
    service: MetricsService, change: dict[str, Any], text: str
) -> None:
    request = {
        "MetricDataQueries": [query("m", "loss", {"Name": "x", "Value": "y"}, "Sum")],
        "StartTime": T0,
        "EndTime": T0 + 60,
        **change,
    }
    with pytest.raises(MetricsValidationError) as caught:
        service.get_metric_data(request)
    assert str(caught.value) == text


def test_list_metrics_filters_recency_and_pages(
    service: MetricsService, store: MetricStore
) -> None:
    def names(**params: Any) -> list[tuple[str, str]]:
        metrics = service.list_metrics(params)["Metrics"]
        assert all(m["Namespace"] == NS for m in metrics)
        return [(m["MetricName"], m["Dimensions"][0]["Value"]) for m in metrics]

    everything = [
        ("CPUUtilization", "job-a/algo-1"),
        ("CPUUtilization", "job-a/algo-2"),
        ("loss", "job-a"),
        ("loss", "job-b"),
    ]
    assert names() == everything
    assert names(Namespace=NS) == everything
    assert names(Namespace="AWS/EC2") == []
    assert names(MetricName="loss") == [("loss", "job-a"), ("loss", "job-b")]
    assert names(Dimensions=[{"Name": "TrainingJobName", "Value": "job-b"}]) == [("loss", "job-b")]
    assert names(Dimensions=[{"Name": "Host"}]) == everything[:2]
    assert names(Dimensions=[{"Name": "Host", "Value": "job-a/algo-2"}]) == [everything[1]]
    # job-b's only point is two days old.
    assert names(RecentlyActive="PT3H") == everything[:3]
    store.append(
        "job-c",
        [MetricPoint(f"m{i:03d}", "algo-1", T0, 1.0) for i in range(600)],
    )
    first = service.list_metrics({"Dimensions": [{"Name": "TrainingJobName", "Value": "job-c"}]})
    assert len(first["Metrics"]) == 500
    rest = service.list_metrics(
        {
            "Dimensions": [{"Name": "TrainingJobName", "Value": "job-c"}],
            "NextToken": first["NextToken"],
        }
    )
    assert "NextToken" not in rest
    listed = [m["MetricName"] for m in first["Metrics"] + rest["Metrics"]]
    assert listed == [f"m{i:03d}" for i in range(600)]
    with pytest.raises(MetricsInvalidParameterValue, match="NextToken is invalid"):
        service.list_metrics({"NextToken": "eyJvIjogLTF9"})

"""Metrics end to end: a real training job on a real `trainforge serve` prints metric lines (one
tab-separated, which CloudWatch holds as ``#011``); its MetricDefinitions turn them into points
that Describe's FinalMetricDataList, the SageMaker SDK's TrainingJobAnalytics (pointed at the
server with AWS_ENDPOINT_URL_CLOUDWATCH, as a user would) and `trainforge metrics` (table and
--json, from the server and from the local store) all report alike. A bad regex is refused at
create."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cloudwatch_support import add_points
from tests.server_support import RunningServer, start_server, wait_for_job
from tests.support import job_request, trainforge
from trainforge.domain.metrics import MetricPoint, MetricSource

pytestmark = pytest.mark.docker

# One metric line per second, so each second of the series holds one point.
SCRIPT = (
    "echo 'epoch 1 loss=0.9'; sleep 1; "
    "echo 'epoch 2 loss=0.5 (no acc yet)'; sleep 1; "
    "printf 'acc\\t0.75\\tepoch 3 loss=0.25\\n'; sleep 1; "
    "echo 'loss=not-a-number'"
)
DEFINITIONS = [
    {"Name": "train:loss", "Regex": "loss=([0-9.]+)"},
    {"Name": "validation:acc", "Regex": "acc#011([0-9.]+)"},
]
SDK_SCRIPT = """
import sys
import boto3
import sagemaker
from sagemaker.analytics import TrainingJobAnalytics
session = sagemaker.Session(boto_session=boto3.Session(region_name="us-east-1"))
frame = TrainingJobAnalytics(sys.argv[1], sagemaker_session=session).dataframe()
print(frame.to_json(orient="records"))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("metrics-home")
    # The instance points are the test's own (below), not sampled ones.
    running = start_server(home, TRAINFORGE_INSTANCE_METRICS_SECONDS="0")
    yield running
    running.stop()


def _metrics_json(home: Path, name: str, **env: str) -> dict[str, Any]:
    proc = trainforge(home, "metrics", name, "--json", **env)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def test_a_jobs_metrics_everywhere(
    server: RunningServer, images: dict[str, str], tmp_path: Path
) -> None:
    sm = server.client("sagemaker")
    request = job_request(
        images["busybox"], f"file://{tmp_path}/out", entrypoint=["/bin/sh", "-c", SCRIPT]
    )
    request["AlgorithmSpecification"]["MetricDefinitions"] = DEFINITIONS
    name = request["TrainingJobName"]
    sm.create_training_job(**request)
    described = wait_for_job(sm, name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    # Points no log line gave: the instance metrics the platform samples per host.
    started = described["TrainingStartTime"].timestamp()
    add_points(
        server.home,
        name,
        [
            MetricPoint("CPUUtilization", "algo-1", started + i, 40.0 + i, MetricSource.INSTANCE)
            for i in range(3)
        ],
    )

    other_home = tmp_path / "client-home"
    other_home.mkdir()
    remote = _metrics_json(other_home, name, TRAINFORGE_SERVER_URL=server.url)
    local = _metrics_json(server.home, name)
    assert remote == local
    rows = {(m["MetricName"], m.get("Host")): m for m in remote["Metrics"]}
    assert sorted(rows) == [
        ("CPUUtilization", "algo-1"),
        ("train:loss", None),
        ("validation:acc", None),
    ]
    loss, acc, cpu = (
        rows["train:loss", None],
        rows["validation:acc", None],
        rows["CPUUtilization", "algo-1"],
    )
    assert [p["Value"] for p in loss["Series"]] == [0.9, 0.5, 0.25]
    assert (loss["Points"], loss["LastValue"]) == (3, 0.25)
    assert (acc["Points"], acc["LastValue"], [p["Value"] for p in acc["Series"]]) == (
        1,
        0.75,
        [0.75],
    )
    assert (cpu["Points"], cpu["LastValue"]) == (3, 42.0)
    assert cpu["Dimensions"] == [{"Name": "Host", "Value": f"{name}/algo-1"}]

    # FinalMetricDataList: each algorithm metric's last value, at a whole second.
    finals = {
        m["MetricName"]: m
        for m in sm.describe_training_job(TrainingJobName=name)["FinalMetricDataList"]
    }
    assert sorted(finals) == ["train:loss", "validation:acc"]
    for metric, row in (("train:loss", loss), ("validation:acc", acc)):
        assert finals[metric]["Value"] == row["LastValue"]
        stamp = finals[metric]["Timestamp"]
        assert stamp.microsecond == 0
        assert stamp == dt.datetime.fromisoformat(row["LastTimestamp"])

    table = trainforge(other_home, "metrics", name, TRAINFORGE_SERVER_URL=server.url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["METRIC", "HOST", "LAST", "POINTS", "LAST", "TIMESTAMP"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["train:loss", "-", "0.25", "3"],
        ["validation:acc", "-", "0.75", "1"],
        ["CPUUtilization", "algo-1", "42", "3"],
    ]

    env = dict(os.environ)
    env["AWS_ENDPOINT_URL_SAGEMAKER"] = server.url
    env["AWS_ENDPOINT_URL_CLOUDWATCH"] = server.url
    sdk = subprocess.run(
        [sys.executable, "-c", SDK_SCRIPT, name],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert sdk.returncode == 0, sdk.stderr
    frame = json.loads(sdk.stdout.strip().splitlines()[-1])
    # The SDK asks for the per-minute Average between the job's start and its end.
    minutes: dict[tuple[str, int], list[float]] = {}
    for metric, row in (("train:loss", loss), ("validation:acc", acc)):
        for point in row["Series"]:
            second = dt.datetime.fromisoformat(point["Timestamp"]).timestamp()
            minutes.setdefault((metric, int(second) // 60), []).append(point["Value"])
    expected = sorted(
        (metric, sum(values) / len(values)) for (metric, _), values in minutes.items()
    )
    got = sorted((r["metric_name"], r["value"]) for r in frame)
    assert [m for m, _ in got] == [m for m, _ in expected]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected])


def test_a_bad_metric_regex_is_refused_at_create(
    server: RunningServer, images: dict[str, str], tmp_path: Path
) -> None:
    request = job_request(images["busybox"], f"file://{tmp_path}/out", entrypoint=["true"])
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "ok", "Regex": "ok=([0-9.]+)"},
        {"Name": "broken", "Regex": "loss=([0-9.]+"},
    ]
    sm = server.client("sagemaker")
    with pytest.raises(sm.exceptions.ClientError) as caught:
        sm.create_training_job(**request)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "algorithmSpecification.metricDefinitions.2.member.regex" in error["Message"]

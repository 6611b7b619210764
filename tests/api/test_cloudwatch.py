"""The CloudWatch metrics API of a real `trainforge serve`: GetMetricStatistics, GetMetricData and
ListMetrics through real botocore clients in each protocol CloudWatch's model lists (Smithy RPC
v2 CBOR, AWS JSON 1.0, query), through the real AWS CLI, signed with SigV4 (service
``monitoring``), and hostile CBOR framing. The points are written into the server's store as the
runtime writes them; the expected statistics are worked out here from those points."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cloudwatch_support import PROTOCOLS, add_points, cloudwatch_client
from tests.server_support import RunningServer, start_server
from tests.support import unique_name
from trainforge.aws import cbor
from trainforge.domain.metrics import MetricPoint, MetricSource

NS = "/aws/sagemaker/TrainingJobs"
AWS = str(Path(sys.executable).parent / "aws")
CONTENT_TYPES = {
    "smithy-rpc-v2-cbor": "application/cbor",
    "json": "application/x-amz-json-1.0",
    "query": "text/xml",
}
# A whole minute ten minutes ago: periods of 60 s start on it.
T0 = float(int(time.time()) // 60 * 60 - 600)
LOSS = [(T0 + 10 * i, 1.0 / (i + 1)) for i in range(12)]
CPU = {"algo-1": [(T0 + 30 * i, 10.0 + i) for i in range(4)], "algo-2": [(T0, 90.0)]}


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    home = tmp_path_factory.mktemp("cloudwatch-home")
    running = start_server(home)
    name = unique_name("metrics")
    points = [MetricPoint("train:loss", "algo-1", t, v) for t, v in LOSS]
    for host, series in CPU.items():
        points += [
            MetricPoint("CPUUtilization", host, t, v, MetricSource.INSTANCE) for t, v in series
        ]
    add_points(home, name, points)
    yield running, name
    running.stop()


def _minutes(series: list[tuple[float, float]]) -> dict[float, list[float]]:
    groups: dict[float, list[float]] = {}
    for stamp, value in series:
        groups.setdefault(stamp // 60 * 60, []).append(value)
    return groups


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_operation_in_every_protocol(
    job: tuple[RunningServer, str], protocol: str, tmp_path: Path
) -> None:
    server, name = job
    cw = cloudwatch_client(server.url, protocol, tmp_path)
    answer = cw.get_metric_statistics(
        Namespace=NS,
        MetricName="train:loss",
        Dimensions=[{"Name": "TrainingJobName", "Value": name}],
        StartTime=T0 + 7,
        EndTime=T0 + 3600,
        Period=60,
        Statistics=["Average", "SampleCount", "Sum", "Minimum", "Maximum"],
    )
    assert answer["ResponseMetadata"]["HTTPHeaders"]["content-type"] == CONTENT_TYPES[protocol]
    assert answer["Label"] == "train:loss"
    expected = [
        {
            "Timestamp": minute,
            "Average": pytest.approx(sum(values) / len(values)),
            "SampleCount": float(len(values)),
            "Sum": pytest.approx(sum(values)),
            "Minimum": min(values),
            "Maximum": max(values),
            "Unit": "None",
        }
        for minute, values in sorted(_minutes(LOSS).items())
    ]
    got = [{**d, "Timestamp": d["Timestamp"].timestamp()} for d in answer["Datapoints"]]
    assert got == expected

    data = cw.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "cpu",
                "MetricStat": {
                    "Metric": {
                        "Namespace": NS,
                        "MetricName": "CPUUtilization",
                        "Dimensions": [{"Name": "Host", "Value": f"{name}/algo-1"}],
                    },
                    "Period": 30,
                    "Stat": "Maximum",
                },
            },
            {
                "Id": "elsewhere",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization"},
                    "Period": 60,
                    "Stat": "Average",
                },
                "Label": "nothing here",
            },
        ],
        StartTime=T0,
        EndTime=T0 + 3600,
        ScanBy="TimestampAscending",
    )
    cpu, elsewhere = data["MetricDataResults"]
    assert [t.timestamp() for t in cpu["Timestamps"]] == [t for t, _ in CPU["algo-1"]]
    assert cpu["Values"] == [v for _, v in CPU["algo-1"]]
    assert (cpu["Label"], cpu["StatusCode"]) == ("CPUUtilization", "Complete")
    assert (elsewhere["Label"], elsewhere["Timestamps"], elsewhere["Values"]) == (
        "nothing here",
        [],
        [],
    )

    listed = cw.list_metrics(Namespace=NS, Dimensions=[{"Name": "Host"}], RecentlyActive="PT3H")
    hosts = sorted(
        (m["MetricName"], m["Dimensions"][0]["Value"])
        for m in listed["Metrics"]
        if m["Dimensions"][0]["Value"].startswith(name + "/")
    )
    assert hosts == [("CPUUtilization", f"{name}/{host}") for host in sorted(CPU)]
    mine = cw.list_metrics(Dimensions=[{"Name": "TrainingJobName", "Value": name}])["Metrics"]
    assert mine == [
        {
            "Namespace": NS,
            "MetricName": "train:loss",
            "Dimensions": [{"Name": "TrainingJobName", "Value": name}],
        }
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors_in_every_protocol(
    job: tuple[RunningServer, str], protocol: str, tmp_path: Path
) -> None:
    server, name = job
    cw = cloudwatch_client(server.url, protocol, tmp_path)
    base: dict[str, Any] = {
        "Namespace": NS,
        "MetricName": "train:loss",
        "Dimensions": [{"Name": "TrainingJobName", "Value": name}],
        "StartTime": T0,
        "EndTime": T0 + 600,
        "Period": 60,
        "Statistics": ["Average"],
    }
    with pytest.raises(cw.exceptions.InvalidParameterValueException) as caught:
        cw.get_metric_statistics(**{**base, "EndTime": T0})
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "InvalidParameterValue",
        "The parameter StartTime must not equal parameter EndTime.",
    )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(cw.exceptions.InvalidParameterCombinationException):
        cw.get_metric_statistics(**{**base, "ExtendedStatistics": ["p90"]})
    with pytest.raises(ClientError) as caught:
        cw.get_metric_statistics(**{**base, "Statistics": ["Median"]})
    assert caught.value.response["Error"] == {
        **caught.value.response["Error"],
        "Code": "ValidationError",
        "Message": "1 validation error detected: Value 'Median' at 'statistics.1.member' failed "
        "to satisfy constraint: Member must satisfy enum value set: [SampleCount, Average, Sum, "
        "Minimum, Maximum]",
    }
    with pytest.raises(ClientError) as caught:
        cw.get_metric_data(MetricDataQueries=[{"Id": "m1"}], StartTime=T0 + 60, EndTime=T0)
    assert caught.value.response["Error"]["Code"] == "ValidationError"
    assert caught.value.response["Error"]["Message"] == (
        "The parameter EndTime must be greater than StartTime."
    )
    stat = {"Metric": {"Namespace": NS, "MetricName": "m"}, "Period": 60, "Stat": "Sum"}
    with pytest.raises(cw.exceptions.InvalidNextToken):
        cw.get_metric_data(
            MetricDataQueries=[{"Id": "m1", "MetricStat": stat}],
            StartTime=T0,
            EndTime=T0 + 60,
            NextToken="x",
        )


def _raw(server: RunningServer, path: str, headers: dict[str, str], body: bytes) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_cbor_framing_errors_are_cbor_answers(job: tuple[RunningServer, str]) -> None:
    server, _ = job
    path = "/service/GraniteServiceVersion20100801/operation/ListMetrics"
    cbor_headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    cases = [
        (path, cbor_headers, b"\xa1\x61", "SerializationException"),
        (path, cbor_headers, b"\x81" * 100 + b"\x00", "SerializationException"),
        (path, {"Content-Type": "application/cbor"}, b"\xa0", "SerializationException"),
        (path.replace("ListMetrics", "PutMetricData"), cbor_headers, b"\xa0", "Unknown"),
        ("/service/Nope/operation/ListMetrics", cbor_headers, b"\xa0", "Unknown"),
        ("/service/x", cbor_headers, b"\xa0", "Unknown"),
        (path, cbor_headers, cbor.encode({"Namespace": 5}), "ValidationError"),
    ]
    for where, headers, body, kind in cases:
        status, answer_headers, data = _raw(server, where, headers, body)
        assert status == 400, (where, body)
        assert answer_headers["smithy-protocol"] == "rpc-v2-cbor"
        assert answer_headers["content-type"] == "application/cbor"
        error = cbor.decode(data)
        assert error["__type"].startswith(kind), error
        assert error["message"]
    status, _, data = _raw(server, path, cbor_headers, b"")
    assert status == 200 and "Metrics" in cbor.decode(data)


def test_aws_cli_reads_metrics(job: tuple[RunningServer, str]) -> None:
    server, name = job
    env = dict(os.environ)
    env["AWS_ENDPOINT_URL_CLOUDWATCH"] = server.url

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AWS, *args], capture_output=True, text=True, env=env, timeout=60)

    common = [
        "--namespace",
        NS,
        "--metric-name",
        "train:loss",
        "--dimensions",
        f"Name=TrainingJobName,Value={name}",
        "--period",
        "60",
    ]
    proc = aws(
        "cloudwatch",
        "get-metric-statistics",
        *common,
        "--start-time",
        str(int(T0)),
        "--end-time",
        str(int(T0) + 3600),
        "--statistics",
        "Maximum",
    )
    assert proc.returncode == 0, proc.stderr
    points = json.loads(proc.stdout)["Datapoints"]
    assert [p["Maximum"] for p in points] == [
        max(values) for _, values in sorted(_minutes(LOSS).items())
    ]
    listed = json.loads(aws("cloudwatch", "list-metrics", "--namespace", NS).stdout)
    assert {"Name": "TrainingJobName", "Value": name} in [
        m["Dimensions"][0] for m in listed["Metrics"]
    ]
    bad = aws(
        "cloudwatch",
        "get-metric-statistics",
        *common,
        "--start-time",
        str(int(T0)),
        "--end-time",
        str(int(T0)),
        "--statistics",
        "Maximum",
    )
    assert bad.returncode == 255
    assert (
        "An error occurred (InvalidParameterValue) when calling the GetMetricStatistics "
        "operation: The parameter StartTime must not equal parameter EndTime."
    ) in bad.stderr


def test_signed_requests_in_every_protocol(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    key = ("AKIDMETRICS", "metrics-secret")
    with start_server(home, TRAINFORGE_ACCESS_KEYS=":".join(key)) as server:
        for protocol in PROTOCOLS:
            good = cloudwatch_client(server.url, protocol, tmp_path, credentials=key)
            assert good.list_metrics(Namespace=NS)["Metrics"] == []
            bad = cloudwatch_client(
                server.url, protocol, tmp_path, credentials=(key[0], "not-the-secret")
            )
            with pytest.raises(ClientError) as caught:
                bad.list_metrics(Namespace=NS)
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
            assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_timestamp_text_no_parser_reads_is_a_validation_error(
    job: tuple[RunningServer, str],
) -> None:
    server, _ = job
    body = {
        "Namespace": NS,
        "MetricName": "m",
        "StartTime": "1000000000000",
        "EndTime": T0,
        "Period": 60,
        "Statistics": ["Sum"],
    }
    status, headers, answer = server.raw(
        "GraniteServiceVersion20100801.GetMetricStatistics", json.dumps(body)
    )
    assert (status, headers["x-amzn-query-error"]) == (400, "ValidationError;Sender")
    assert answer == {
        "__type": "ValidationError",
        "message": "1 validation error detected: Value '1000000000000' at 'startTime' failed to "
        "satisfy constraint: Member must be of type Timestamp",
    }

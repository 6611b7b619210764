"""Issue 3, point 1: AWS JSON 1.1 on POST /, routed by X-Amz-Target, request ids on every
response, errors as {"__type", "message"} with x-amzn-ErrorType, epoch timestamps; unknown and
malformed requests get AWS errors, never a trace or a bare 500. Also: invalid requests generated
from the model, over raw HTTP, each get a 400 naming the member."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.modelgen import cases, rich_create_request
from tests.server_support import RunningServer, start_server
from trainforge.aws import spec


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("protocol-home")
    running = start_server(home)
    yield running
    running.stop()


def test_success_has_request_id_and_json_content_type(server: RunningServer) -> None:
    status, headers, body = server.raw("SageMaker.ListTrainingJobs", "{}")
    assert status == 200
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert len(headers["x-amzn-requestid"]) == 36
    assert body == {"TrainingJobSummaries": []}


def test_error_shape_and_headers(server: RunningServer) -> None:
    status, headers, body = server.raw(
        "SageMaker.DescribeTrainingJob", json.dumps({"TrainingJobName": "nope"})
    )
    assert status == 400
    assert headers["x-amzn-errortype"] == "ValidationException"
    assert headers["x-amzn-requestid"]
    assert body == {"__type": "ValidationException", "message": "Requested resource not found."}


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        ("SageMaker.CreateModel", "{}", "UnknownOperationException"),
        ("SageMaker.NoSuchOperation", "{}", "UnknownOperationException"),
        ("Kinesis_20131202.ListStreams", "{}", "UnknownOperationException"),
        (None, "{}", "UnknownOperationException"),
        ("SageMaker.ListTrainingJobs", "{not json", "SerializationException"),
        ("SageMaker.ListTrainingJobs", "[1, 2]", "SerializationException"),
    ],
)
def test_bad_requests_get_aws_errors(
    server: RunningServer, target: str | None, body: str, code: str
) -> None:
    status, headers, payload = server.raw(target, body)
    assert status == 400
    assert payload["__type"] == code
    assert headers["x-amzn-errortype"] == code
    assert payload["message"]


def test_other_methods_and_paths(server: RunningServer) -> None:
    status, _, payload = server.raw(None, "", method="GET", path="/")
    assert status == 400
    assert payload["__type"] == "UnknownOperationException"
    status, _, _ = server.raw("SageMaker.ListTrainingJobs", "{}", path="/other")
    assert status == 400


def test_logs_errors_use_the_logs_model(server: RunningServer) -> None:
    status, headers, payload = server.raw(
        "Logs_20140328.GetLogEvents",
        json.dumps({"logGroupName": "/aws/sagemaker/TrainingJobs", "logStreamName": "x/algo-1-1"}),
    )
    assert status == 400
    assert payload == {
        "__type": "ResourceNotFoundException",
        "message": "The specified log group does not exist.",
    }
    assert headers["x-amzn-errortype"] == "ResourceNotFoundException"


def test_timestamps_are_epoch_seconds_on_the_wire(server: RunningServer, tmp_path: Path) -> None:
    request = rich_create_request()
    request["TrainingJobName"] = "wire-timestamps"
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"file://{tmp_path}"
    request["OutputDataConfig"]["S3OutputPath"] = f"file://{tmp_path}/out"
    del request["VpcConfig"]
    status, _, body = server.raw("SageMaker.CreateTrainingJob", json.dumps(request))
    assert status == 200, body
    assert body == {
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:000000000000:training-job/wire-timestamps"
    }
    server.raw("SageMaker.StopTrainingJob", json.dumps({"TrainingJobName": "wire-timestamps"}))
    status, _, describe = server.raw(
        "SageMaker.DescribeTrainingJob", json.dumps({"TrainingJobName": "wire-timestamps"})
    )
    assert isinstance(describe["CreationTime"], int | float)
    assert isinstance(describe["SecondaryStatusTransitions"][0]["StartTime"], int | float)
    assert None not in describe.values()
    # ISO 8601 timestamps are accepted in requests too.
    status, _, listing = server.raw(
        "SageMaker.ListTrainingJobs", json.dumps({"CreationTimeAfter": "2000-01-01T00:00:00Z"})
    )
    assert status == 200
    assert [s["TrainingJobName"] for s in listing["TrainingJobSummaries"]] == ["wire-timestamps"]


CREATE = spec.operation("sagemaker", "CreateTrainingJob").input_shape
GENERATED = cases(CREATE, rich_create_request())


def test_every_model_generated_invalid_request_gets_a_400_naming_its_member(
    server: RunningServer,
) -> None:
    failures = []
    for case in GENERATED:
        status, headers, body = server.raw("SageMaker.CreateTrainingJob", json.dumps(case.params))
        if (
            status != 400
            or body.get("__type") != "ValidationException"
            or f"at '{case.path}'" not in body.get("message", "")
        ):
            failures.append((case.id, status, body))
        assert headers.get("x-amzn-requestid")
    assert failures == []
    assert len(GENERATED) >= 150


def test_invalid_requests_of_the_other_operations(server: RunningServer) -> None:
    bad = [
        ("SageMaker.DescribeTrainingJob", {}, "trainingJobName"),
        ("SageMaker.DescribeTrainingJob", {"TrainingJobName": "x" * 64}, "trainingJobName"),
        ("SageMaker.ListTrainingJobs", {"MaxResults": 0}, "maxResults"),
        ("SageMaker.ListTrainingJobs", {"SortBy": "Size"}, "sortBy"),
        ("SageMaker.ListTrainingJobs", {"StatusEquals": "Running"}, "statusEquals"),
        ("SageMaker.ListTrainingJobs", {"CreationTimeAfter": "yesterday"}, "creationTimeAfter"),
        ("SageMaker.StopTrainingJob", {"TrainingJobName": "bad_name"}, "trainingJobName"),
        ("SageMaker.AddTags", {"ResourceArn": "x", "Tags": []}, "resourceArn"),
        ("Logs_20140328.GetLogEvents", {"logGroupName": "g"}, "logStreamName"),
        (
            "Logs_20140328.GetLogEvents",
            {"logGroupName": "g", "logStreamName": "s", "limit": 0},
            "limit",
        ),
        ("Logs_20140328.DescribeLogStreams", {"logGroupName": "g", "orderBy": "Size"}, "orderBy"),
    ]
    for target, params, path in bad:
        status, _, body = server.raw(target, json.dumps(params))
        assert status == 400, (target, params, body)
        assert body["__type"] == "ValidationException", (target, body)
        assert f"at '{path}'" in body["message"], (target, body)


def test_a_request_signed_off_the_servers_clock_gets_awss_error(tmp_path: Path) -> None:
    """boto3 signing at a clock 20 minutes behind, then ahead, of the server's: refused as AWS
    refuses a signature more than 15 minutes off; 10 minutes off is still accepted."""
    home = tmp_path / "home"
    home.mkdir()
    key = ("AKIDCLOCK", "clock-secret")
    stamps: dict[int, str] = {}  # what botocore signed, by the minutes its clock was off
    with start_server(home, TRAINFORGE_ACCESS_KEYS=":".join(key)) as server:
        sagemaker = boto3.client(
            "sagemaker",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
            config=Config(retries={"max_attempts": 1}),
        )
        answers: dict[int, Any] = {}
        for minutes in (-20, 20, -10, 10):
            with mock.patch("botocore.auth.get_current_datetime", _shifted(minutes, stamps)):
                try:
                    sagemaker.list_training_jobs()
                    answers[minutes] = None
                except ClientError as exc:
                    answers[minutes] = exc.response
    assert answers[-10] is None and answers[10] is None
    behind, ahead = answers[-20], answers[20]
    assert behind is not None and ahead is not None
    for answer in (behind, ahead):
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert answer["Error"]["Code"] == "InvalidSignatureException"
    expired = re.fullmatch(
        r"Signature expired: (\w+) is now earlier than (\w+) \((\w+) - 15 min\.\)",
        behind["Error"]["Message"],
    )
    assert expired is not None, behind["Error"]["Message"]
    signed_at, earliest, now = (_stamp(group) for group in expired.groups())
    assert expired.group(1) == stamps[-20]
    assert earliest == now - dt.timedelta(minutes=15)
    assert now - signed_at > dt.timedelta(minutes=15)
    early = re.fullmatch(
        r"Signature not yet current: (\w+) is still later than (\w+) \((\w+) \+ 15 min\.\)",
        ahead["Error"]["Message"],
    )
    assert early is not None, ahead["Error"]["Message"]
    signed_at, latest, now = (_stamp(group) for group in early.groups())
    assert early.group(1) == stamps[20]
    assert latest == now + dt.timedelta(minutes=15)
    assert signed_at - now > dt.timedelta(minutes=15)


def _shifted(minutes: int, stamps: dict[int, str]) -> Callable[..., dt.datetime]:
    """botocore's clock (naive UTC, as botocore.compat gives it), ``minutes`` off."""

    def now(remove_tzinfo: bool = True) -> dt.datetime:
        moment = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=minutes)
        stamps[minutes] = moment.strftime("%Y%m%dT%H%M%SZ")
        return moment

    return now


def _stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ")

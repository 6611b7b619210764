"""Issue 3, points 2 and 3, with real boto3 clients against a running `trainforge serve`: every
SageMaker operation, the waiter and the paginator, and the CloudWatch Logs operations with the
token behaviour the SDKs rely on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.server_support import RunningServer, start_server, wait_for_job
from tests.support import job_request, unique_name

pytestmark = pytest.mark.docker
GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("operations-home")
    running = start_server(home, TRAINFORGE_STOP_GRACE_SECONDS="1")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sm(server: RunningServer) -> Any:
    return server.client("sagemaker")


@pytest.fixture(scope="module")
def logs(server: RunningServer) -> Any:
    return server.client("logs")


def _create(sm: Any, image: str, out: Path, **extra: Any) -> str:
    request = job_request(image, f"file://{out}", **extra)
    sm.create_training_job(**request)
    return str(request["TrainingJobName"])


def _error(info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def test_create_returns_at_once_and_the_job_runs_in_the_background(
    sm: Any, images: dict[str, str], tmp_path: Path
) -> None:
    # A create that waited for the job would find it ended; it returns while the job runs.
    name = _create(sm, images["busybox"], tmp_path, entrypoint=["/bin/sleep", "3"])
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
    described = wait_for_job(sm, name)
    assert described["TrainingJobStatus"] == "Completed"


def test_describe_echoes_defaults_like_sagemaker(
    sm: Any, images: dict[str, str], tmp_path: Path
) -> None:
    name = _create(
        sm,
        images["argv"],
        tmp_path,
        HyperParameters={"a": "1"},
        Environment={"E": "v"},
        Tags=[{"Key": "team", "Value": "ml"}],
    )
    d = wait_for_job(sm, name)
    arn = f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}"
    assert d["TrainingJobArn"] == arn
    assert d["ModelArtifacts"] == {
        "S3ModelArtifacts": f"file://{tmp_path}/{name}/output/model.tar.gz"
    }
    assert d["OutputDataConfig"] == {
        "S3OutputPath": f"file://{tmp_path}",
        "KmsKeyId": "",
        "CompressionType": "GZIP",
    }
    assert d["AlgorithmSpecification"]["EnableSageMakerMetricsTimeSeries"] is False
    assert d["HyperParameters"] == {"a": "1"}
    assert d["Environment"] == {"E": "v"}
    assert d["StoppingCondition"] == {"MaxRuntimeInSeconds": 300}
    for flag in (
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
    ):
        assert d[flag] is False
    assert d["TrainingTimeInSeconds"] >= 1
    assert d["BillableTimeInSeconds"] == d["TrainingTimeInSeconds"]
    assert "Tags" not in d
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]


def test_list_filters_sort_orders_and_pagination(
    sm: Any, images: dict[str, str], tmp_path: Path
) -> None:
    tag = unique_name("lst")
    names = []
    for i in range(5):
        request = job_request(images["argv"], f"file://{tmp_path}", name=f"{tag}-{i}")
        sm.create_training_job(**request)
        names.append(request["TrainingJobName"])
        time.sleep(0.01)
    for name in names:
        wait_for_job(sm, name)
    newest_first = sm.list_training_jobs(NameContains=tag)["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in newest_first] == list(reversed(names))
    summary = newest_first[0]
    assert set(summary) == {
        "TrainingJobName",
        "TrainingJobArn",
        "CreationTime",
        "TrainingEndTime",
        "LastModifiedTime",
        "TrainingJobStatus",
    }
    ascending = sm.list_training_jobs(NameContains=tag.upper(), SortOrder="Ascending")[
        "TrainingJobSummaries"
    ]
    assert [s["TrainingJobName"] for s in ascending] == names
    by_name = sm.list_training_jobs(NameContains=tag, SortBy="Name", SortOrder="Descending")[
        "TrainingJobSummaries"
    ]
    assert [s["TrainingJobName"] for s in by_name] == sorted(names, reverse=True)
    paginator = sm.get_paginator("list_training_jobs")
    pages = list(paginator.paginate(NameContains=tag, PaginationConfig={"PageSize": 2}))
    assert [len(p["TrainingJobSummaries"]) for p in pages] == [2, 2, 1]
    assert [s["TrainingJobName"] for p in pages for s in p["TrainingJobSummaries"]] == list(
        reversed(names)
    )
    after = newest_first[2]["CreationTime"]
    recent = sm.list_training_jobs(NameContains=tag, CreationTimeAfter=after)[
        "TrainingJobSummaries"
    ]
    assert [s["TrainingJobName"] for s in recent] == [names[4], names[3]]


def test_status_equals_cuts_the_page_before_filtering(
    sm: Any, images: dict[str, str], tmp_path: Path
) -> None:
    tag = unique_name("flt")
    ok = job_request(images["argv"], f"file://{tmp_path}", name=f"{tag}-ok")
    sm.create_training_job(**ok)
    wait_for_job(sm, ok["TrainingJobName"])
    bad = job_request(
        images["busybox"], f"file://{tmp_path}", name=f"{tag}-bad", entrypoint=["/bin/false"]
    )
    sm.create_training_job(**bad)
    wait_for_job(sm, bad["TrainingJobName"])
    # SageMaker documents that MaxResults jobs are taken first and then filtered by status.
    page = sm.list_training_jobs(NameContains=tag, StatusEquals="Completed", MaxResults=1)
    assert page["TrainingJobSummaries"] == []
    assert "NextToken" in page
    following = sm.list_training_jobs(
        NameContains=tag, StatusEquals="Completed", MaxResults=1, NextToken=page["NextToken"]
    )
    assert [s["TrainingJobName"] for s in following["TrainingJobSummaries"]] == [
        ok["TrainingJobName"]
    ]


def test_waiter_and_stop(sm: Any, images: dict[str, str], tmp_path: Path) -> None:
    name = _create(sm, images["busybox"], tmp_path, entrypoint=["/bin/sleep", "60"])
    with pytest.raises(ClientError) as info:
        sm.stop_training_job(TrainingJobName="no-such-job")
    assert _error(info) == ("ValidationException", "Requested resource not found.")
    sm.stop_training_job(TrainingJobName=name)
    assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    waiter = sm.get_waiter("training_job_completed_or_stopped")
    waiter.wait(TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    d = sm.describe_training_job(TrainingJobName=name)
    assert (d["TrainingJobStatus"], d["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [t["Status"] for t in d["SecondaryStatusTransitions"]][-2:] == ["Stopping", "Stopped"]
    with pytest.raises(ClientError) as info:
        sm.stop_training_job(TrainingJobName=name)
    assert _error(info) == (
        "ValidationException",
        "The request was rejected because the training job is in status Stopped.",
    )


def test_waiter_fails_on_failed_and_unknown_jobs(
    sm: Any, images: dict[str, str], tmp_path: Path
) -> None:
    name = _create(sm, images["busybox"], tmp_path, entrypoint=["/bin/false"])
    waiter = sm.get_waiter("training_job_completed_or_stopped")
    with pytest.raises(WaiterError) as failed:
        waiter.wait(TrainingJobName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert "Failed" in str(failed.value)
    with pytest.raises(WaiterError):
        waiter.wait(TrainingJobName="never-created", WaiterConfig={"Delay": 1, "MaxAttempts": 3})


def test_delete_only_finished_jobs_and_the_name_is_free_again(
    sm: Any, images: dict[str, str], tmp_path: Path
) -> None:
    name = _create(sm, images["busybox"], tmp_path, entrypoint=["/bin/sleep", "30"])
    with pytest.raises(ClientError) as info:
        sm.delete_training_job(TrainingJobName=name)
    assert _error(info)[0] == "ResourceInUse"
    sm.stop_training_job(TrainingJobName=name)
    wait_for_job(sm, name)
    sm.delete_training_job(TrainingJobName=name)
    with pytest.raises(ClientError) as info:
        sm.describe_training_job(TrainingJobName=name)
    assert _error(info) == ("ValidationException", "Requested resource not found.")
    sm.create_training_job(**job_request(images["argv"], f"file://{tmp_path}", name=name))
    assert wait_for_job(sm, name)["TrainingJobStatus"] == "Completed"


def test_tags(sm: Any, images: dict[str, str], tmp_path: Path) -> None:
    name = _create(sm, images["argv"], tmp_path)
    arn = sm.describe_training_job(TrainingJobName=name)["TrainingJobArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "3"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [
        {"Key": "a", "Value": "3"},
        {"Key": "b", "Value": "2"},
    ]
    page = sm.list_tags(ResourceArn=arn, MaxResults=50)
    assert len(page["Tags"]) == 2 and "NextToken" not in page
    sm.delete_tags(ResourceArn=arn, TagKeys=["a"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError):
        sm.list_tags(ResourceArn=arn.replace(name, "missing-job"))
    wait_for_job(sm, name)


def test_log_streams_events_and_tokens(
    sm: Any, logs: Any, images: dict[str, str], tmp_path: Path
) -> None:
    name = _create(
        sm,
        images["busybox"],
        tmp_path,
        entrypoint=[
            "/bin/sh",
            "-c",
            "for i in 1 2 3 4 5; do echo line-$i; done; echo ERROR bad thing",
        ],
    )
    wait_for_job(sm, name)
    streams = logs.describe_log_streams(
        logGroupName=GROUP, logStreamNamePrefix=f"{name}/", orderBy="LogStreamName"
    )["logStreams"]
    assert len(streams) == 1
    stream = streams[0]["logStreamName"]
    assert stream.startswith(f"{name}/algo-1-")
    page = logs.get_log_events(
        logGroupName=GROUP, logStreamName=stream, startFromHead=True, limit=2
    )
    assert [e["message"] for e in page["events"]] == ["line-1", "line-2"]
    messages = [e["message"] for e in page["events"]]
    token = page["nextForwardToken"]
    while True:
        page = logs.get_log_events(
            logGroupName=GROUP, logStreamName=stream, startFromHead=True, nextToken=token, limit=2
        )
        messages += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            break
        token = page["nextForwardToken"]
    assert messages == ["line-1", "line-2", "line-3", "line-4", "line-5", "ERROR bad thing"]
    tail = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, limit=2)
    assert [e["message"] for e in tail["events"]] == ["line-5", "ERROR bad thing"]
    before = logs.get_log_events(
        logGroupName=GROUP, logStreamName=stream, nextToken=tail["nextBackwardToken"], limit=2
    )
    assert [e["message"] for e in before["events"]] == ["line-3", "line-4"]
    filtered = logs.filter_log_events(
        logGroupName=GROUP, logStreamNamePrefix=f"{name}/", filterPattern="ERROR"
    )
    assert [(e["logStreamName"], e["message"]) for e in filtered["events"]] == [
        (stream, "ERROR bad thing")
    ]
    either = logs.filter_log_events(
        logGroupName=GROUP, logStreamNames=[stream], filterPattern='?line-2 ?"bad thing"'
    )
    assert [e["message"] for e in either["events"]] == ["line-2", "ERROR bad thing"]
    with pytest.raises(ClientError) as info:
        logs.describe_log_streams(
            logGroupName=GROUP, logStreamNamePrefix=f"{name}/", orderBy="LastEventTime"
        )
    assert _error(info)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as info:
        logs.get_log_events(logGroupName=GROUP, logStreamName=f"{name}/algo-9-1")
    assert _error(info) == ("ResourceNotFoundException", "The specified log stream does not exist.")

"""service.mapping: DescribeTrainingJob / ListTrainingJobs shapes and the defaults they echo."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from trainforge.domain.records import TrainingJob, Transition
from trainforge.domain.status import SecondaryStatus, TrainingJobStatus
from trainforge.service.mapping import describe, model_artifacts_uri, summary

S = SecondaryStatus
P = TrainingJobStatus
ARN = "arn:aws:sagemaker:us-east-1:000000000000:training-job/job"


def request(**extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": "job",
        "RoleArn": "arn:aws:iam::000000000000:role/r",
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        **extra,
    }


def job(req: dict[str, Any] | None = None, **fields: Any) -> TrainingJob:
    base = TrainingJob(
        name="job",
        arn=ARN,
        request=request() if req is None else req,
        status=P.IN_PROGRESS,
        secondary_status=S.STARTING,
        creation_time=100.0,
        last_modified_time=100.0,
        transitions=[Transition(S.STARTING, 100.0, None, "Starting the training job")],
    )
    return dataclasses.replace(base, **fields)


def test_minimal_in_progress_job() -> None:
    out = describe(job())
    assert out == {
        "TrainingJobName": "job",
        "TrainingJobArn": ARN,
        "ModelArtifacts": {"S3ModelArtifacts": "s3://bucket/out/job/output/model.tar.gz"},
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Starting",
        "AlgorithmSpecification": {
            "TrainingImage": "img:1",
            "TrainingInputMode": "File",
            "EnableSageMakerMetricsTimeSeries": False,
        },
        "RoleArn": "arn:aws:iam::000000000000:role/r",
        "OutputDataConfig": {
            "S3OutputPath": "s3://bucket/out/",
            "KmsKeyId": "",
            "CompressionType": "GZIP",
        },
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "CreationTime": 100.0,
        "LastModifiedTime": 100.0,
        "SecondaryStatusTransitions": [
            {"Status": "Starting", "StartTime": 100.0, "StatusMessage": "Starting the training job"}
        ],
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": False,
        "EnableManagedSpotTraining": False,
    }
    assert list(out) == [
        "TrainingJobName",
        "TrainingJobArn",
        "ModelArtifacts",
        "TrainingJobStatus",
        "SecondaryStatus",
        "AlgorithmSpecification",
        "RoleArn",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
        "CreationTime",
        "LastModifiedTime",
        "SecondaryStatusTransitions",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
    ]


def test_given_values_are_echoed_not_defaulted() -> None:
    req = request(
        AlgorithmSpecification={
            "TrainingImage": "img:1",
            "TrainingInputMode": "File",
            "EnableSageMakerMetricsTimeSeries": True,
        },
        OutputDataConfig={
            "S3OutputPath": "s3://bucket/out",
            "KmsKeyId": "alias/k",
            "CompressionType": "NONE",
        },
        StoppingCondition={"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        EnableNetworkIsolation=True,
        EnableManagedSpotTraining=True,
        HyperParameters={"lr": "0.1"},
        Environment={"A": "1"},
        CheckpointConfig={"S3Uri": "s3://b/ck"},
    )
    out = describe(job(req))
    assert out["ModelArtifacts"] == {"S3ModelArtifacts": "s3://bucket/out/job/output/model/"}
    assert out["AlgorithmSpecification"]["EnableSageMakerMetricsTimeSeries"] is True
    assert out["OutputDataConfig"] == {
        "S3OutputPath": "s3://bucket/out",
        "KmsKeyId": "alias/k",
        "CompressionType": "NONE",
    }
    assert out["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert out["EnableNetworkIsolation"] is True
    assert out["EnableManagedSpotTraining"] is True
    assert out["HyperParameters"] == {"lr": "0.1"}
    assert out["Environment"] == {"A": "1"}
    assert out["CheckpointConfig"] == {"S3Uri": "s3://b/ck"}


def test_stopping_condition_without_max_runtime_gets_the_default() -> None:
    out = describe(job(request(StoppingCondition={"MaxWaitTimeInSeconds": 90000})))
    assert out["StoppingCondition"] == {"MaxWaitTimeInSeconds": 90000, "MaxRuntimeInSeconds": 86400}


def test_channel_defaults() -> None:
    req = request(
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t"}},
            },
            {
                "ChannelName": "val",
                "CompressionType": "Gzip",
                "RecordWrapperType": "RecordIO",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://b/v",
                        "S3DataDistributionType": "ShardedByS3Key",
                    }
                },
            },
        ]
    )
    channels = describe(job(req))["InputDataConfig"]
    assert channels == [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://b/t",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "CompressionType": "None",
            "RecordWrapperType": "None",
        },
        {
            "ChannelName": "val",
            "CompressionType": "Gzip",
            "RecordWrapperType": "RecordIO",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://b/v",
                    "S3DataDistributionType": "ShardedByS3Key",
                }
            },
        },
    ]


def test_describe_does_not_change_the_stored_request() -> None:
    req = request(
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t"}},
            }
        ],
        StoppingCondition={},
    )
    before = copy.deepcopy(req)
    out = describe(job(req))
    out["ResourceConfig"]["InstanceCount"] = 99
    assert req == before


def test_completed_job_times_and_transitions() -> None:
    transitions = [
        Transition(S.STARTING, 100.0, 110.0, "Starting the training job"),
        Transition(S.DOWNLOADING, 110.0, 120.0, "Downloading input data"),
        Transition(S.TRAINING, 120.0, 180.5, "Training"),
        Transition(S.UPLOADING, 180.5, 190.0, "Uploading generated training model"),
        Transition(S.COMPLETED, 190.0, 190.0, "Training job completed"),
    ]
    out = describe(
        job(
            status=P.COMPLETED,
            secondary_status=S.COMPLETED,
            transitions=transitions,
            training_start_time=110.0,
            training_end_time=190.0,
            last_modified_time=190.5,
            final_metrics=[{"MetricName": "loss", "Value": 0.1, "Timestamp": 180.0}],
        )
    )
    assert out["TrainingStartTime"] == 110.0
    assert out["TrainingEndTime"] == 190.0
    assert out["TrainingTimeInSeconds"] == 80
    assert out["BillableTimeInSeconds"] == 80
    assert out["FinalMetricDataList"] == [{"MetricName": "loss", "Value": 0.1, "Timestamp": 180.0}]
    assert out["SecondaryStatusTransitions"][-1] == {
        "Status": "Completed",
        "StartTime": 190.0,
        "EndTime": 190.0,
        "StatusMessage": "Training job completed",
    }
    assert all("EndTime" in t for t in out["SecondaryStatusTransitions"])
    assert "FailureReason" not in out
    keys = list(out)
    assert keys.index("TrainingStartTime") == keys.index("CreationTime") + 1
    assert keys.index("TrainingEndTime") == keys.index("TrainingStartTime") + 1
    assert keys.index("LastModifiedTime") == keys.index("TrainingEndTime") + 1


def test_failure_reason_only_when_failed() -> None:
    failed = describe(
        job(status=P.FAILED, secondary_status=S.FAILED, failure_reason="ClientError: nope")
    )
    assert failed["FailureReason"] == "ClientError: nope"
    assert list(failed).index("FailureReason") == list(failed).index("SecondaryStatus") + 1
    stopped = describe(
        job(status=P.STOPPED, secondary_status=S.STOPPED, failure_reason="left over")
    )
    assert "FailureReason" not in stopped


def test_open_transition_has_no_end_time() -> None:
    out = describe(
        job(
            secondary_status=S.DOWNLOADING,
            transitions=[
                Transition(S.STARTING, 100.0, 110.0, "a"),
                Transition(S.DOWNLOADING, 110.0, None, "b"),
            ],
        )
    )
    assert out["SecondaryStatusTransitions"] == [
        {"Status": "Starting", "StartTime": 100.0, "EndTime": 110.0, "StatusMessage": "a"},
        {"Status": "Downloading", "StartTime": 110.0, "StatusMessage": "b"},
    ]
    assert list(out["SecondaryStatusTransitions"][0]) == [
        "Status",
        "StartTime",
        "EndTime",
        "StatusMessage",
    ]
    assert "TrainingTimeInSeconds" not in out


def test_optional_members() -> None:
    req = request(
        ResourceConfig={
            "InstanceType": "ml.m5.large",
            "InstanceCount": 1,
            "VolumeSizeInGB": 5,
            "KeepAlivePeriodInSeconds": 60,
        },
        VpcConfig={"SecurityGroupIds": ["sg-1"], "Subnets": ["s-1"]},
        ProfilerConfig={"DisableProfiler": True},
        ProfilerRuleConfigurations=[{"RuleConfigurationName": "r"}],
        RetryStrategy={"MaximumRetryAttempts": 2},
        DebugHookConfig={"S3OutputPath": "s3://b/d"},
    )
    out = describe(job(req))
    assert out["WarmPoolStatus"] == {"Status": "Terminated"}
    assert out["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["s-1"]}
    assert out["ProfilingStatus"] == "Disabled"
    assert out["ProfilerRuleConfigurations"] == [{"RuleConfigurationName": "r"}]
    assert out["RetryStrategy"] == {"MaximumRetryAttempts": 2}
    assert out["DebugHookConfig"] == {"S3OutputPath": "s3://b/d"}
    enabled = describe(job(request(ProfilerConfig={"S3OutputPath": "s3://b/p"})))
    assert enabled["ProfilingStatus"] == "Enabled"
    assert "WarmPoolStatus" not in describe(job())


def test_model_artifacts_uri_and_summary() -> None:
    assert model_artifacts_uri(job()) == "s3://bucket/out/job/output/model.tar.gz"
    local = job(request(OutputDataConfig={"S3OutputPath": "/data/out"}))
    assert model_artifacts_uri(local) == "/data/out/job/output/model.tar.gz"
    assert summary(job()) == {
        "TrainingJobName": "job",
        "TrainingJobArn": ARN,
        "CreationTime": 100.0,
        "LastModifiedTime": 100.0,
        "TrainingJobStatus": "InProgress",
    }
    ended = summary(job(status=P.COMPLETED, training_end_time=150.0))
    assert list(ended) == [
        "TrainingJobName",
        "TrainingJobArn",
        "CreationTime",
        "TrainingEndTime",
        "LastModifiedTime",
        "TrainingJobStatus",
    ]

"""runtime.jobspec: the defaults JobSpec.from_request applies to a CreateTrainingJob request."""

from __future__ import annotations

from typing import Any

from trainforge.domain.hosts import Host
from trainforge.runtime.jobspec import (
    DEFAULT_MAX_RUNTIME_SECONDS,
    ChannelSpec,
    CheckpointSpec,
    InstanceGroup,
    JobSpec,
)

ARN = "arn:aws:sagemaker:us-east-1:000000000000:training-job/job"


def minimal(**extra: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": "job",
        "RoleArn": "arn:aws:iam::000000000000:role/r",
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        **extra,
    }


def spec_of(request: dict[str, Any]) -> JobSpec:
    return JobSpec.from_request("job", ARN, "eu-west-1", request)


def test_minimal_request_defaults() -> None:
    spec = spec_of(minimal())
    assert spec.name == "job"
    assert spec.arn == ARN
    assert spec.region == "eu-west-1"
    assert spec.role_arn == "arn:aws:iam::000000000000:role/r"
    assert spec.image == "img:1"
    assert spec.entrypoint is None
    assert spec.arguments is None
    assert spec.hyperparameters == {}
    assert spec.environment == {}
    assert spec.channels == ()
    assert spec.output_path == "s3://bucket/out"
    assert spec.compression == "GZIP"
    assert spec.max_runtime_seconds == DEFAULT_MAX_RUNTIME_SECONDS == 86400
    assert spec.checkpoint is None
    assert spec.network_isolation is False
    assert spec.hosts == (Host("algo-1", 1, "ml.m5.large", "homogeneousCluster"),)
    assert spec.groups == (InstanceGroup("homogeneousCluster", "ml.m5.large", ("algo-1",)),)
    assert spec.output_prefix == "s3://bucket/out/job/output"
    assert spec.model_artifacts_uri == "s3://bucket/out/job/output/model.tar.gz"


def test_output_path_trailing_slash_and_compression_none() -> None:
    spec = spec_of(
        minimal(OutputDataConfig={"S3OutputPath": "s3://bucket/out/", "CompressionType": "NONE"})
    )
    assert spec.output_prefix == "s3://bucket/out/job/output"
    assert spec.model_artifacts_uri == "s3://bucket/out/job/output/model/"


def test_channel_defaults_and_effective_input_mode() -> None:
    request = minimal(
        AlgorithmSpecification={"TrainingImage": "img:1", "TrainingInputMode": "FastFile"},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/t/"}},
            },
            {
                "ChannelName": "validation",
                "InputMode": "File",
                "ContentType": "text/csv",
                "CompressionType": "Gzip",
                "RecordWrapperType": "RecordIO",
                "ShuffleConfig": {"Seed": 7},
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "ManifestFile",
                        "S3Uri": "s3://b/manifest",
                        "S3DataDistributionType": "ShardedByS3Key",
                    }
                },
            },
        ],
    )
    spec = spec_of(request)
    assert spec.channels == (
        ChannelSpec(
            name="train",
            uri="s3://b/t/",
            data_type="S3Prefix",
            distribution="FullyReplicated",
            input_mode="FastFile",
        ),
        ChannelSpec(
            name="validation",
            uri="s3://b/manifest",
            data_type="ManifestFile",
            distribution="ShardedByS3Key",
            input_mode="File",
            content_type="text/csv",
            compression="Gzip",
            record_wrapper="RecordIO",
            shuffle_seed=7,
        ),
    )
    assert spec.channels[0].content_type is None
    assert spec.channels[0].compression == "None"
    assert spec.channels[0].record_wrapper == "None"


def test_input_mode_defaults_to_file_without_algorithm_mode() -> None:
    request = minimal(
        AlgorithmSpecification={"TrainingImage": "img:1"},
        InputDataConfig=[
            {"ChannelName": "c", "DataSource": {"S3DataSource": {"S3Uri": "/data"}}},
        ],
    )
    channel = spec_of(request).channels[0]
    assert channel.input_mode == "File"
    assert channel.data_type == "S3Prefix"
    assert channel.uri == "/data"


def test_hosts_of_a_homogeneous_cluster() -> None:
    spec = spec_of(minimal(ResourceConfig={"InstanceType": "ml.c5.xlarge", "InstanceCount": 3}))
    assert [h.name for h in spec.hosts] == ["algo-1", "algo-2", "algo-3"]
    assert [h.index for h in spec.hosts] == [1, 2, 3]
    assert {h.group for h in spec.hosts} == {"homogeneousCluster"}


def test_hosts_are_numbered_across_instance_groups() -> None:
    resource = {
        "InstanceGroups": [
            {"InstanceGroupName": "cpu", "InstanceType": "ml.c5.xlarge", "InstanceCount": 2},
            {"InstanceGroupName": "gpu", "InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
            {"InstanceGroupName": "more", "InstanceType": "ml.m5.large", "InstanceCount": 2},
        ],
        "VolumeSizeInGB": 30,
    }
    spec = spec_of(minimal(ResourceConfig=resource))
    assert spec.hosts == (
        Host("algo-1", 1, "ml.c5.xlarge", "cpu"),
        Host("algo-2", 2, "ml.c5.xlarge", "cpu"),
        Host("algo-3", 3, "ml.g5.xlarge", "gpu"),
        Host("algo-4", 4, "ml.m5.large", "more"),
        Host("algo-5", 5, "ml.m5.large", "more"),
    )
    assert spec.groups == (
        InstanceGroup("cpu", "ml.c5.xlarge", ("algo-1", "algo-2")),
        InstanceGroup("gpu", "ml.g5.xlarge", ("algo-3",)),
        InstanceGroup("more", "ml.m5.large", ("algo-4", "algo-5")),
    )


def test_twelve_hosts_are_in_numeric_order() -> None:
    spec = spec_of(minimal(ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 12}))
    assert [h.name for h in spec.hosts][8:] == ["algo-9", "algo-10", "algo-11", "algo-12"]


def test_channel_instance_groups() -> None:
    request = minimal(
        InputDataConfig=[
            {
                "ChannelName": "c",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://b/c",
                        "InstanceGroupNames": ["gpu", "cpu"],
                    }
                },
            }
        ]
    )
    assert spec_of(request).channels[0].instance_groups == ("gpu", "cpu")


def test_max_runtime_given() -> None:
    spec = spec_of(minimal(StoppingCondition={"MaxRuntimeInSeconds": 3600}))
    assert spec.max_runtime_seconds == 3600
    spec = spec_of(minimal(StoppingCondition={"MaxWaitTimeInSeconds": 7200}))
    assert spec.max_runtime_seconds == 86400


def test_checkpoint_local_path_default_and_given() -> None:
    spec = spec_of(minimal(CheckpointConfig={"S3Uri": "s3://b/ckpt"}))
    assert spec.checkpoint == CheckpointSpec("s3://b/ckpt", "/opt/ml/checkpoints")
    spec = spec_of(minimal(CheckpointConfig={"S3Uri": "s3://b/ckpt", "LocalPath": "/ckpt"}))
    assert spec.checkpoint == CheckpointSpec("s3://b/ckpt", "/ckpt")


def test_entrypoint_arguments_environment_hyperparameters() -> None:
    request = minimal(
        AlgorithmSpecification={
            "TrainingImage": "img:1",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python", "train.py"],
            "ContainerArguments": ["--epochs", "3"],
        },
        HyperParameters={"lr": "0.1"},
        Environment={"A": "1"},
        EnableNetworkIsolation=True,
    )
    spec = spec_of(request)
    assert spec.entrypoint == ("python", "train.py")
    assert spec.arguments == ("--epochs", "3")
    assert spec.hyperparameters == {"lr": "0.1"}
    assert spec.environment == {"A": "1"}
    assert spec.network_isolation is True
    # The spec holds copies: changing the request later does not change it.
    request["HyperParameters"]["lr"] = "9"
    assert spec.hyperparameters == {"lr": "0.1"}

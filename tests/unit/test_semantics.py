"""service.semantics: the cross-field rules of CreateTrainingJob and their exact messages."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from trainforge.service.semantics import semantic_errors

BASE: dict[str, Any] = {
    "TrainingJobName": "job",
    "RoleArn": "arn:aws:iam::000000000000:role/r",
    "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train/"}},
        },
        {
            "ChannelName": "local",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/data/local"}},
        },
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
    "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
}

GROUPED: dict[str, Any] = {
    "InstanceGroups": [
        {"InstanceGroupName": "a", "InstanceType": "ml.m5.large", "InstanceCount": 1},
        {"InstanceGroupName": "b", "InstanceType": "ml.m5.large", "InstanceCount": 2},
    ],
    "VolumeSizeInGB": 10,
}


def with_change(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    request = copy.deepcopy(BASE)
    change(request)
    return request


def s3(request: dict[str, Any], index: int) -> dict[str, Any]:
    source: dict[str, Any] = request["InputDataConfig"][index]["DataSource"]["S3DataSource"]
    return source


def test_valid_requests() -> None:
    assert semantic_errors(copy.deepcopy(BASE)) is None

    def grouped(r: dict[str, Any]) -> None:
        r["ResourceConfig"] = copy.deepcopy(GROUPED)
        s3(r, 0)["InstanceGroupNames"] = ["a"]
        s3(r, 1)["InstanceGroupNames"] = ["a", "b"]
        r["CheckpointConfig"] = {"S3Uri": "file:///ckpt", "LocalPath": "/opt/ml/ck"}
        r["EnableManagedSpotTraining"] = True
        r["StoppingCondition"]["MaxWaitTimeInSeconds"] = 3600

    assert semantic_errors(with_change(grouped)) is None

    def no_channels(r: dict[str, Any]) -> None:
        del r["InputDataConfig"]
        r["AlgorithmSpecification"]["TrainingInputMode"] = "FastFile"
        r["StoppingCondition"]["MaxRuntimeInSeconds"] = 2_419_200

    assert semantic_errors(with_change(no_channels)) is None

    def pipe(r: dict[str, Any]) -> None:
        # Pipe channels from S3 and from a local path, by default or per channel; a File
        # channel whose name only looks like an epoch FIFO of another channel is fine.
        r["AlgorithmSpecification"]["TrainingInputMode"] = "Pipe"
        r["InputDataConfig"][0].update(CompressionType="Gzip", RecordWrapperType="RecordIO")
        r["InputDataConfig"][0]["ShuffleConfig"] = {"Seed": 7}
        r["InputDataConfig"][1].update(ChannelName="train_x", InputMode="File")

    assert semantic_errors(with_change(pipe)) is None

    # A registry reached through the engine's own network needs no Lambda: Vpc mode alone is
    # how such images are named, and the engine pulls them as any other.
    assert (
        semantic_errors(
            with_change(algo(TrainingImageConfig={"TrainingRepositoryAccessMode": "Vpc"}))
        )
        is None
    )


def set_key(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(r: dict[str, Any]) -> None:
        r[key] = value

    return change


def algo(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(r: dict[str, Any]) -> None:
        r["AlgorithmSpecification"].update(fields)
        for key in [k for k, v in r["AlgorithmSpecification"].items() if v is None]:
            del r["AlgorithmSpecification"][key]

    return change


def resource(value: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return set_key("ResourceConfig", value)


def channel0(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(r: dict[str, Any]) -> None:
        r["InputDataConfig"][0].update(fields)

    return change


def channel0_s3(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(r: dict[str, Any]) -> None:
        s3(r, 0).update(fields)

    return change


def _duplicate_channels(r: dict[str, Any]) -> None:
    r["InputDataConfig"][1]["ChannelName"] = "train"


def _pipe_fifo_clash(r: dict[str, Any]) -> None:
    r["AlgorithmSpecification"]["TrainingInputMode"] = "Pipe"
    r["InputDataConfig"][1]["ChannelName"] = "train_1"
    r["InputDataConfig"][1]["InputMode"] = "File"


def _pipe_augmented(r: dict[str, Any]) -> None:
    r["InputDataConfig"][0]["InputMode"] = "Pipe"
    s3(r, 0)["S3DataType"] = "AugmentedManifestFile"


def _mixed_groups(r: dict[str, Any]) -> None:
    r["ResourceConfig"] = copy.deepcopy(GROUPED)
    s3(r, 0)["InstanceGroupNames"] = ["a"]


def _unknown_group(r: dict[str, Any]) -> None:
    r["ResourceConfig"] = copy.deepcopy(GROUPED)
    s3(r, 0)["InstanceGroupNames"] = ["a", "zz"]
    s3(r, 1)["InstanceGroupNames"] = ["b"]


def _duplicate_groups(r: dict[str, Any]) -> None:
    r["ResourceConfig"] = copy.deepcopy(GROUPED)
    r["ResourceConfig"]["InstanceGroups"][1]["InstanceGroupName"] = "a"


def _zero_group(r: dict[str, Any]) -> None:
    r["ResourceConfig"] = copy.deepcopy(GROUPED)
    r["ResourceConfig"]["InstanceGroups"][1]["InstanceCount"] = 0


def _groups_and_type(r: dict[str, Any]) -> None:
    r["ResourceConfig"] = copy.deepcopy(GROUPED)
    r["ResourceConfig"]["InstanceType"] = "ml.m5.large"


def _groups_and_count(r: dict[str, Any]) -> None:
    r["ResourceConfig"] = copy.deepcopy(GROUPED)
    r["ResourceConfig"]["InstanceCount"] = 1


def _second_channel_bad_uri(r: dict[str, Any]) -> None:
    s3(r, 1)["S3Uri"] = "relative/dir"


def _spot(wait: int | None, runtime: int | None) -> Callable[[dict[str, Any]], None]:
    def change(r: dict[str, Any]) -> None:
        r["EnableManagedSpotTraining"] = True
        r["StoppingCondition"] = {}
        if wait is not None:
            r["StoppingCondition"]["MaxWaitTimeInSeconds"] = wait
        if runtime is not None:
            r["StoppingCondition"]["MaxRuntimeInSeconds"] = runtime

    return change


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "serverless",
        set_key("ServerlessJobConfig", {}),
        "ServerlessJobConfig is not supported: trainforge does not run serverless training jobs.",
    ),
    (
        "mlflow",
        set_key("MlflowConfig", {"MlflowResourceArn": "x"}),
        "MlflowConfig is not supported: trainforge does not run MLflow integration.",
    ),
    (
        "model-package",
        set_key("ModelPackageConfig", {}),
        "ModelPackageConfig is not supported: trainforge does not run model package registration.",
    ),
    (
        "image-and-algorithm",
        algo(AlgorithmName="xgboost"),
        "AlgorithmSpecification cannot specify both TrainingImage and AlgorithmName; specify "
        "exactly one.",
    ),
    (
        "algorithm-name",
        algo(AlgorithmName="xgboost", TrainingImage=None),
        "AlgorithmSpecification.AlgorithmName is not supported: trainforge runs container images; "
        "give AlgorithmSpecification.TrainingImage.",
    ),
    (
        "no-image",
        algo(TrainingImage=None),
        "AlgorithmSpecification.TrainingImage must be specified.",
    ),
    (
        "image-credentials-lambda",
        algo(
            TrainingImageConfig={
                "TrainingRepositoryAccessMode": "Vpc",
                "TrainingRepositoryAuthConfig": {
                    "TrainingRepositoryCredentialsProviderArn": (
                        "arn:aws:lambda:us-east-1:123456789012:function:creds"
                    )
                },
            }
        ),
        "AlgorithmSpecification.TrainingImageConfig.TrainingRepositoryAuthConfig is not "
        "supported: trainforge does not call a credentials provider Lambda; it pulls private "
        "images with its own registry logins (TRAINFORGE_REGISTRY_AUTH, "
        "TRAINFORGE_REGISTRY_AUTH_FILE, the Docker configuration, or an ECR login).",
    ),
    (
        "groups-and-type",
        _groups_and_type,
        "InstanceType or InstanceCount cannot be specified with InstanceGroups",
    ),
    (
        "groups-and-count",
        _groups_and_count,
        "InstanceType or InstanceCount cannot be specified with InstanceGroups",
    ),
    (
        "duplicate-groups",
        _duplicate_groups,
        "InstanceGroupName values must be unique within ResourceConfig.InstanceGroups.",
    ),
    (
        "zero-group",
        _zero_group,
        "InstanceCount of every instance group must be at least 1.",
    ),
    (
        "no-type",
        resource({"InstanceCount": 1, "VolumeSizeInGB": 1}),
        "ResourceConfig.InstanceType must be specified when InstanceGroups is not.",
    ),
    (
        "no-count",
        resource({"InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}),
        "ResourceConfig.InstanceCount must be specified when InstanceGroups is not.",
    ),
    (
        "zero-count",
        resource({"InstanceType": "ml.m5.large", "InstanceCount": 0, "VolumeSizeInGB": 1}),
        "1 validation error detected: Value '0' at 'resourceConfig.instanceCount' failed to "
        "satisfy constraint: Member must have value greater than or equal to 1",
    ),
    (
        "duplicate-channels",
        _duplicate_channels,
        "Channel names must be unique within InputDataConfig; repeated: train.",
    ),
    (
        "mixed-groups",
        _mixed_groups,
        "Some channels have assigned instance groups: [train] while others not: [local]",
    ),
    (
        "file-system",
        channel0(DataSource={"FileSystemDataSource": {"FileSystemId": "fs-1"}}),
        "Channel 'train': FileSystemDataSource is not supported; trainforge reads channels from "
        "S3DataSource (an S3 URI or a local path).",
    ),
    (
        "empty-source",
        channel0(DataSource={}),
        "Channel 'train': DataSource is not supported; trainforge reads channels from "
        "S3DataSource (an S3 URI or a local path).",
    ),
    (
        "pipe-fifo-name-clash",
        _pipe_fifo_clash,
        "Channel 'train_1' has the name of an epoch FIFO of Pipe channel 'train' "
        "(/opt/ml/input/data/train_1); rename one of them.",
    ),
    (
        "gzip-in-file-mode",
        channel0(CompressionType="Gzip"),
        "Invalid compression type for channel train: File mode only supports NONE, got Gzip "
        "instead",
    ),
    (
        "gzip-in-fastfile-mode",
        channel0(CompressionType="Gzip", InputMode="FastFile"),
        "Invalid compression type for channel train: FastFile mode only supports NONE, got Gzip "
        "instead",
    ),
    (
        "pipe-augmented",
        _pipe_augmented,
        "Channel 'train': S3DataType AugmentedManifestFile is not supported in Pipe mode; use "
        "S3Prefix or ManifestFile.",
    ),
    (
        "augmented",
        channel0_s3(S3DataType="AugmentedManifestFile"),
        "Channel 'train': S3DataType AugmentedManifestFile is not supported in File mode; use "
        "S3Prefix or ManifestFile.",
    ),
    (
        "fastfile-manifest",
        channel0(
            InputMode="FastFile",
            DataSource={"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://b/m"}},
        ),
        "Channel 'train': FastFile input mode supports only S3DataType S3Prefix.",
    ),
    (
        "channel-uri",
        _second_channel_bad_uri,
        "Value 'relative/dir' at 'inputDataConfig.2.member.dataSource.s3DataSource.s3Uri' is not "
        "an S3 URI (s3://bucket/prefix) or an absolute local path (file:///path or /path).",
    ),
    (
        "unknown-group",
        _unknown_group,
        "Channel 'train' names instance groups that ResourceConfig.InstanceGroups does not "
        "define: zz.",
    ),
    (
        "output-path",
        set_key("OutputDataConfig", {"S3OutputPath": "out/dir"}),
        "Value 'out/dir' at 'outputDataConfig.s3OutputPath' is not an S3 URI "
        "(s3://bucket/prefix) or an absolute local path (file:///path or /path).",
    ),
    (
        "checkpoint-uri",
        set_key("CheckpointConfig", {"S3Uri": "ckpt"}),
        "Value 'ckpt' at 'checkpointConfig.s3Uri' is not an S3 URI (s3://bucket/prefix) or an "
        "absolute local path (file:///path or /path).",
    ),
    (
        "checkpoint-local-path",
        set_key("CheckpointConfig", {"S3Uri": "s3://b/ck", "LocalPath": "ckpt"}),
        "CheckpointConfig.LocalPath must be an absolute path, not 'ckpt'.",
    ),
    (
        "max-runtime",
        set_key("StoppingCondition", {"MaxRuntimeInSeconds": 2_419_201}),
        "StoppingCondition.MaxRuntimeInSeconds must be at most 2419200 seconds (28 days), not "
        "2419201.",
    ),
    (
        "spot-no-wait",
        _spot(None, 3600),
        "MaxWaitTimeInSeconds must be specified when EnableManagedSpotTraining is true.",
    ),
    (
        "spot-wait-too-short",
        _spot(3599, 3600),
        "MaxWaitTimeInSeconds must be greater than or equal to MaxRuntimeInSeconds.",
    ),
    (
        "spot-wait-below-default-runtime",
        _spot(86399, None),
        "MaxWaitTimeInSeconds must be greater than or equal to MaxRuntimeInSeconds.",
    ),
]


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_messages(change: Callable[[dict[str, Any]], None], message: str) -> None:
    assert semantic_errors(with_change(change)) == message


def test_spot_wait_equal_to_default_runtime_is_fine() -> None:
    assert semantic_errors(with_change(_spot(86400, None))) is None


def test_two_duplicate_channel_names_are_listed_sorted() -> None:
    def change(r: dict[str, Any]) -> None:
        r["InputDataConfig"] = [
            {
                "ChannelName": n,
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/x"}},
            }
            for n in ("z", "a", "z", "a", "m")
        ]

    assert semantic_errors(with_change(change)) == (
        "Channel names must be unique within InputDataConfig; repeated: a, z."
    )


@pytest.mark.parametrize("name", ["..", "."])
def test_dot_channel_names_are_refused(name: str) -> None:
    def dotted(r: dict[str, Any]) -> None:
        r["InputDataConfig"][1]["ChannelName"] = name

    assert semantic_errors(with_change(dotted)) == (
        f"Value '{name}' at 'inputDataConfig.2.member.channelName' is not a valid channel name: "
        "'.' and '..' name no directory under /opt/ml/input/data."
    )

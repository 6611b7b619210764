"""Invalid requests generated from the botocore model: for every member a valid request reaches,
the values that break its type, length, range, enum or pattern, and the removal of each required
member. Each case knows the member path the error must name."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import regex
from botocore.model import ListShape, MapShape, Shape, StructureShape

from trainforge.aws.skeleton import ALSO_REQUIRED
from trainforge.aws.validate import lower_first

WRONG_TYPE: dict[str, Any] = {
    "string": 12345,
    "integer": "not-a-number",
    "long": "not-a-number",
    "double": "not-a-number",
    "float": "not-a-number",
    "boolean": "yes",
    "list": "not-a-list",
    "map": ["not", "a", "map"],
    "structure": "not-a-structure",
    "timestamp": [1, 2],
}


@dataclass(frozen=True)
class Case:
    id: str
    params: dict[str, Any]
    path: str
    kind: str


def _set(params: dict[str, Any], keys: list[str | int], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(params)
    target: Any = out
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value
    return out


def _delete(params: dict[str, Any], keys: list[str | int]) -> dict[str, Any]:
    out = copy.deepcopy(params)
    target: Any = out
    for key in keys[:-1]:
        target = target[key]
    del target[keys[-1]]
    return out


def _bad_strings(shape: Shape) -> Iterator[tuple[str, str]]:
    meta = shape.metadata
    if "max" in meta and meta["max"] < 5000:
        yield "too-long", "x" * (meta["max"] + 1)
    if meta.get("min", 0) >= 1:
        yield "too-short", ""
    if shape.enum:
        yield "enum", "NotAValidEnumValue"
    pattern = meta.get("pattern")
    if pattern and not shape.enum:
        for candidate in ("!! not valid !!", "\u0000", " leading space", "UPPER_and_lower@#"):
            if (
                not regex.fullmatch(pattern, candidate)
                and len(candidate) <= meta.get("max", 10**9)
                and len(candidate) >= meta.get("min", 0)
            ):
                yield "pattern", candidate
                break


def cases(shape: StructureShape, params: dict[str, Any]) -> list[Case]:
    found: list[Case] = []
    _walk(shape, params, params, [], "", found)
    return found


def _walk(
    shape: Shape,
    value: Any,
    root: dict[str, Any],
    keys: list[str | int],
    path: str,
    found: list[Case],
) -> None:
    kind = shape.type_name
    if keys:
        found.append(
            Case(f"{path}:type", _set(root, keys, WRONG_TYPE.get(kind, object())), path, "type")
        )
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        required = set(shape.required_members) | ALSO_REQUIRED.get(shape.name, frozenset())
        for name, member in shape.members.items():
            member_path = f"{path}.{lower_first(name)}" if path else lower_first(name)
            if name in value:
                if name in required:
                    found.append(
                        Case(
                            f"{member_path}:required",
                            _delete(root, [*keys, name]),
                            member_path,
                            "required",
                        )
                    )
                _walk(member, value[name], root, [*keys, name], member_path, found)
    elif kind == "list":
        assert isinstance(shape, ListShape)
        meta = shape.metadata
        if "max" in meta and value and meta["max"] < 200:
            found.append(
                Case(
                    f"{path}:too-many",
                    _set(root, keys, [value[0]] * (meta["max"] + 1)),
                    path,
                    "length",
                )
            )
        for index, item in enumerate(value):
            _walk(shape.member, item, root, [*keys, index], f"{path}.{index + 1}.member", found)
    elif kind == "map":
        assert isinstance(shape, MapShape)
        for label, bad in _bad_strings(shape.key):
            found.append(
                Case(f"{path}:key-{label}", _set(root, keys, {**value, bad: "v"}), path, "map-key")
            )
        if value:
            first = next(iter(value))
            for label, bad in _bad_strings(shape.value):
                found.append(
                    Case(
                        f"{path}:value-{label}",
                        _set(root, keys, {**value, first: bad}),
                        path,
                        "map-value",
                    )
                )
    elif kind == "string":
        for label, bad in _bad_strings(shape):
            found.append(Case(f"{path}:{label}", _set(root, keys, bad), path, label))
    elif kind in ("integer", "long"):
        meta = shape.metadata
        if "min" in meta:
            found.append(
                Case(f"{path}:below-min", _set(root, keys, meta["min"] - 1), path, "range")
            )
        if "max" in meta:
            found.append(
                Case(f"{path}:above-max", _set(root, keys, meta["max"] + 1), path, "range")
            )


def rich_create_request(image: str = "trainforge/busybox:latest") -> dict[str, Any]:
    """A CreateTrainingJob request that reaches most members of the input shape."""
    return {
        "TrainingJobName": "model-generated-case",
        "RoleArn": "arn:aws:iam::000000000000:role/trainforge-test",
        "HyperParameters": {"epochs": "3"},
        "AlgorithmSpecification": {
            "TrainingImage": image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "train:loss", "Regex": "loss=([0-9.]+)"}],
            "EnableSageMakerMetricsTimeSeries": False,
            "ContainerEntrypoint": ["/bin/sh"],
            "ContainerArguments": ["/opt/ml/input/data/code/train.sh"],
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://bucket/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
                "CompressionType": "None",
                "RecordWrapperType": "None",
                "InputMode": "File",
                "ShuffleConfig": {"Seed": 7},
            }
        ],
        "OutputDataConfig": {
            "S3OutputPath": "s3://bucket/output",
            "KmsKeyId": "",
            "CompressionType": "GZIP",
        },
        "ResourceConfig": {
            "InstanceType": "ml.m5.large",
            "InstanceCount": 1,
            "VolumeSizeInGB": 10,
            "KeepAlivePeriodInSeconds": 0,
        },
        "VpcConfig": {"SecurityGroupIds": ["sg-0123"], "Subnets": ["subnet-0123"]},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        "Tags": [{"Key": "team", "Value": "ml"}],
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": False,
        "EnableManagedSpotTraining": False,
        "CheckpointConfig": {"S3Uri": "s3://bucket/ckpt/", "LocalPath": "/opt/ml/checkpoints"},
        "ExperimentConfig": {"ExperimentName": "exp", "TrialName": "trial"},
        "Environment": {"MY_VAR": "value"},
        "RetryStrategy": {"MaximumRetryAttempts": 2},
    }

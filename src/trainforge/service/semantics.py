"""Cross-field rules of a CreateTrainingJob request (spec §12.2) and the features trainforge does
not run, each refused with a ValidationException message that names the field.

Observed SageMaker texts are used verbatim where the spec has them (instance groups); the others
are written in the same style and listed in docs/behaviour.md.
"""

from __future__ import annotations

import re
from typing import Any

from trainforge.domain.metrics import regex_problem
from trainforge.domain.request import CreateTrainingJobRequest
from trainforge.storage.location import BadLocation, parse_location

_UNSUPPORTED_TOP_LEVEL = {
    "ServerlessJobConfig": "serverless training jobs",
    "MlflowConfig": "MLflow integration",
    "ModelPackageConfig": "model package registration",
}
MAX_RUNTIME_LIMIT = 2_419_200


def _location_problem(value: str, field: str) -> str | None:
    try:
        parse_location(value)
    except BadLocation:
        return (
            f"Value '{value}' at '{field}' is not an S3 URI (s3://bucket/prefix) or an absolute "
            "local path (file:///path or /path)."
        )
    return None


def semantic_errors(params: dict[str, Any]) -> str | None:
    for key, what in _UNSUPPORTED_TOP_LEVEL.items():
        if params.get(key) is not None:
            return f"{key} is not supported: trainforge does not run {what}."
    algo = params.get("AlgorithmSpecification") or {}
    if algo.get("AlgorithmName") and algo.get("TrainingImage"):
        return (
            "AlgorithmSpecification cannot specify both TrainingImage and AlgorithmName; "
            "specify exactly one."
        )
    if algo.get("AlgorithmName"):
        return (
            "AlgorithmSpecification.AlgorithmName is not supported: trainforge runs container "
            "images; give AlgorithmSpecification.TrainingImage."
        )
    if not algo.get("TrainingImage"):
        return "AlgorithmSpecification.TrainingImage must be specified."
    image_config = algo.get("TrainingImageConfig") or {}
    if image_config.get("TrainingRepositoryAuthConfig") is not None:
        return (
            "AlgorithmSpecification.TrainingImageConfig.TrainingRepositoryAuthConfig is not "
            "supported: trainforge does not call a credentials provider Lambda; it pulls "
            "private images with its own registry logins (TRAINFORGE_REGISTRY_AUTH, "
            "TRAINFORGE_REGISTRY_AUTH_FILE, the Docker configuration, or an ECR login)."
        )
    for index, definition in enumerate(algo.get("MetricDefinitions") or [], start=1):
        problem = regex_problem(definition["Regex"])
        if problem:
            return (
                f"Value '{definition['Regex']}' at 'algorithmSpecification.metricDefinitions."
                f"{index}.member.regex' is not a valid regular expression: {problem}."
            )
    problem = _resource_problem(params.get("ResourceConfig") or {})
    if problem:
        return problem
    problem = _channel_problem(params)
    if problem:
        return problem
    output = params.get("OutputDataConfig") or {}
    problem = _location_problem(output.get("S3OutputPath", ""), "outputDataConfig.s3OutputPath")
    if problem:
        return problem
    checkpoint = params.get("CheckpointConfig")
    if checkpoint is not None:
        problem = _location_problem(checkpoint.get("S3Uri", ""), "checkpointConfig.s3Uri")
        if problem:
            return problem
        local = checkpoint.get("LocalPath")
        if local is not None and not local.startswith("/"):
            return f"CheckpointConfig.LocalPath must be an absolute path, not '{local}'."
    stopping = params.get("StoppingCondition") or {}
    max_runtime = stopping.get("MaxRuntimeInSeconds")
    if max_runtime is not None and max_runtime > MAX_RUNTIME_LIMIT:
        return (
            f"StoppingCondition.MaxRuntimeInSeconds must be at most {MAX_RUNTIME_LIMIT} seconds "
            f"(28 days), not {max_runtime}."
        )
    if params.get("EnableManagedSpotTraining"):
        wait = stopping.get("MaxWaitTimeInSeconds")
        if wait is None:
            return "MaxWaitTimeInSeconds must be specified when EnableManagedSpotTraining is true."
        if wait < (max_runtime or 86400):
            return "MaxWaitTimeInSeconds must be greater than or equal to MaxRuntimeInSeconds."
    return None


def _resource_problem(resource: dict[str, Any]) -> str | None:
    groups = resource.get("InstanceGroups")
    if groups:
        if resource.get("InstanceType") is not None or resource.get("InstanceCount") is not None:
            return "InstanceType or InstanceCount cannot be specified with InstanceGroups"
        names = [g["InstanceGroupName"] for g in groups]
        if len(set(names)) != len(names):
            return "InstanceGroupName values must be unique within ResourceConfig.InstanceGroups."
        if any(int(g["InstanceCount"]) < 1 for g in groups):
            return "InstanceCount of every instance group must be at least 1."
        return None
    if resource.get("InstanceType") is None:
        return "ResourceConfig.InstanceType must be specified when InstanceGroups is not."
    count = resource.get("InstanceCount")
    if count is None:
        return "ResourceConfig.InstanceCount must be specified when InstanceGroups is not."
    if count < 1:
        return (
            f"1 validation error detected: Value '{count}' at 'resourceConfig.instanceCount' "
            "failed to satisfy constraint: Member must have value greater than or equal to 1"
        )
    return None


def _channel_problem(params: dict[str, Any]) -> str | None:
    channels = params.get("InputDataConfig") or []
    names = [c["ChannelName"] for c in channels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        repeated = ", ".join(duplicates)
        return f"Channel names must be unique within InputDataConfig; repeated: {repeated}."
    with_groups = [c["ChannelName"] for c in channels if _s3(c).get("InstanceGroupNames")]
    if with_groups and len(with_groups) != len(channels):
        without = [n for n in names if n not in with_groups]
        return (
            f"Some channels have assigned instance groups: [{', '.join(with_groups)}] while "
            f"others not: [{', '.join(without)}]"
        )
    groups = {
        g["InstanceGroupName"]
        for g in (params.get("ResourceConfig") or {}).get("InstanceGroups") or []
    }
    default_mode = (params.get("AlgorithmSpecification") or {}).get("TrainingInputMode", "File")
    piped = [c["ChannelName"] for c in channels if (c.get("InputMode") or default_mode) == "Pipe"]
    for pipe in piped:
        # A Pipe channel's epochs are /opt/ml/input/data/<channel>_<N> (spec §7.4).
        clash = next((n for n in names if re.fullmatch(re.escape(pipe) + r"_\d+", n)), None)
        if clash:
            return (
                f"Channel '{clash}' has the name of an epoch FIFO of Pipe channel '{pipe}' "
                f"(/opt/ml/input/data/{clash}); rename one of them."
            )
    for index, channel in enumerate(channels, start=1):
        name = channel["ChannelName"]
        if name in (".", ".."):
            # The model's pattern allows them, but they name no directory of their own.
            return (
                f"Value '{name}' at 'inputDataConfig.{index}.member.channelName' is not a valid "
                "channel name: '.' and '..' name no directory under /opt/ml/input/data."
            )
        source = channel.get("DataSource") or {}
        if "S3DataSource" not in source:
            other = next(iter(source), "DataSource")
            return (
                f"Channel '{name}': {other} is not supported; trainforge reads channels from "
                "S3DataSource (an S3 URI or a local path)."
            )
        s3 = source["S3DataSource"]
        mode = channel.get("InputMode") or default_mode
        compression = channel.get("CompressionType") or "None"
        if mode != "Pipe" and compression != "None":
            # Observed text (sagemaker-python-sdk issue #716).
            return (
                f"Invalid compression type for channel {name}: {mode} mode only supports NONE, "
                f"got {compression} instead"
            )
        data_type = s3.get("S3DataType")
        if data_type not in ("S3Prefix", "ManifestFile"):
            return (
                f"Channel '{name}': S3DataType {data_type} is not supported in {mode} mode; use "
                "S3Prefix or ManifestFile."
            )
        if mode == "FastFile" and data_type != "S3Prefix":
            return f"Channel '{name}': FastFile input mode supports only S3DataType S3Prefix."
        problem = _location_problem(
            s3.get("S3Uri", ""), f"inputDataConfig.{index}.member.dataSource.s3DataSource.s3Uri"
        )
        if problem:
            return problem
        unknown = [g for g in s3.get("InstanceGroupNames") or [] if g not in groups]
        if unknown:
            return (
                f"Channel '{name}' names instance groups that ResourceConfig.InstanceGroups does "
                f"not define: {', '.join(unknown)}."
            )
    return None


def _s3(channel: dict[str, Any]) -> dict[str, Any]:
    return dict((channel.get("DataSource") or {}).get("S3DataSource") or {})


def local_path_problem(params: CreateTrainingJobRequest, shared: tuple[str, ...]) -> str | None:
    """On a cluster engine the nodes cannot read the server's disk: a local path is refused
    unless it lies under a path declared shared by all nodes."""
    fields: list[tuple[str, str]] = []
    for index, channel in enumerate(params.get("InputDataConfig") or [], start=1):
        s3 = channel["DataSource"].get("S3DataSource")
        uri = s3["S3Uri"] if s3 else ""
        fields.append((uri, f"inputDataConfig.{index}.member.dataSource.s3DataSource.s3Uri"))
    fields.append(
        (
            (params.get("OutputDataConfig") or {}).get("S3OutputPath", ""),
            "outputDataConfig.s3OutputPath",
        )
    )
    checkpoint = params.get("CheckpointConfig")
    if checkpoint is not None:
        fields.append((checkpoint.get("S3Uri", ""), "checkpointConfig.s3Uri"))
    for value, field in fields:
        try:
            location = parse_location(value)
        except BadLocation:
            continue
        if not location.is_local:
            continue
        path = location.path.rstrip("/")
        if any(path == root or path.startswith(root + "/") for root in shared):
            continue
        return (
            f"Value '{value}' at '{field}' is a local path, which the nodes of a cluster engine "
            "cannot read: give an S3 URI, or declare the path shared by all nodes "
            "(TRAINFORGE_SHARED_PATHS)."
        )
    return None

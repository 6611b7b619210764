"""Training job records → the DescribeTrainingJob and ListTrainingJobs shapes, in explicit
functions. Values stay Python (timestamps as epoch floats); the protocol layer serializes them by
shape. Defaults are echoed as SageMaker echoes them (spec §12.2 notes, §13.4).
"""

from __future__ import annotations

import copy
from typing import Any, cast

from trainforge.domain import contract
from trainforge.domain.records import TrainingJob
from trainforge.domain.request import CreateTrainingJobRequest
from trainforge.domain.status import billable_seconds, training_seconds

DEFAULT_MAX_RUNTIME = 86400


def model_artifacts_uri(job: TrainingJob) -> str:
    output = job.request.get("OutputDataConfig") or {}
    prefix = contract.output_prefix(output.get("S3OutputPath", ""), job.name)
    if output.get("CompressionType") == "NONE":
        return prefix + "/model/"
    return f"{prefix}/{contract.MODEL_ARCHIVE}"


def _wire(request: CreateTrainingJobRequest) -> dict[str, Any]:
    """The request as the wire dict it was: Describe echoes its members, with defaults filled in,
    into a response the serializer checks against the model."""
    return cast(dict[str, Any], request)


def _algorithm_specification(request: dict[str, Any]) -> dict[str, Any]:
    algo = copy.deepcopy(request.get("AlgorithmSpecification") or {})
    algo.setdefault("EnableSageMakerMetricsTimeSeries", False)
    return algo


def _input_data_config(request: dict[str, Any]) -> list[dict[str, Any]] | None:
    channels = request.get("InputDataConfig")
    if not channels:
        return None
    echoed = []
    for channel in copy.deepcopy(channels):
        s3 = (channel.get("DataSource") or {}).get("S3DataSource")
        if s3 is not None:
            s3.setdefault("S3DataDistributionType", "FullyReplicated")
        channel.setdefault("CompressionType", "None")
        channel.setdefault("RecordWrapperType", "None")
        echoed.append(channel)
    return echoed


def _output_data_config(request: dict[str, Any]) -> dict[str, Any]:
    output = copy.deepcopy(request.get("OutputDataConfig") or {})
    output.setdefault("KmsKeyId", "")
    output.setdefault("CompressionType", "GZIP")
    return output


def describe(job: TrainingJob) -> dict[str, Any]:
    """Every DescribeTrainingJob member that applies, in the order the service emits them."""
    request = _wire(job.request)
    out: dict[str, Any] = {
        "TrainingJobName": job.name,
        "TrainingJobArn": job.arn,
        "ModelArtifacts": {"S3ModelArtifacts": model_artifacts_uri(job)},
        "TrainingJobStatus": job.status.value,
        "SecondaryStatus": job.secondary_status.value,
    }
    if job.failure_reason and job.status.value == "Failed":
        out["FailureReason"] = job.failure_reason
    if request.get("HyperParameters") is not None:
        out["HyperParameters"] = dict(request["HyperParameters"])
    out["AlgorithmSpecification"] = _algorithm_specification(request)
    out["RoleArn"] = request.get("RoleArn")
    channels = _input_data_config(request)
    if channels is not None:
        out["InputDataConfig"] = channels
    out["OutputDataConfig"] = _output_data_config(request)
    out["ResourceConfig"] = copy.deepcopy(request.get("ResourceConfig") or {})
    if request.get("KeepAlivePeriodInSeconds") or (request.get("ResourceConfig") or {}).get(
        "KeepAlivePeriodInSeconds"
    ):
        # Warm pools are not kept: the instances are gone as soon as the job ends.
        out["WarmPoolStatus"] = {"Status": "Terminated"}
    if request.get("VpcConfig") is not None:
        out["VpcConfig"] = copy.deepcopy(request["VpcConfig"])
    stopping = copy.deepcopy(request.get("StoppingCondition") or {})
    stopping.setdefault("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
    out["StoppingCondition"] = stopping
    out["CreationTime"] = job.creation_time
    if job.training_start_time is not None:
        out["TrainingStartTime"] = job.training_start_time
    if job.training_end_time is not None:
        out["TrainingEndTime"] = job.training_end_time
    out["LastModifiedTime"] = job.last_modified_time
    out["SecondaryStatusTransitions"] = [
        {
            "Status": t.status.value,
            "StartTime": t.start_time,
            **({"EndTime": t.end_time} if t.end_time is not None else {}),
            "StatusMessage": t.message,
        }
        for t in job.transitions
    ]
    if job.final_metrics:
        out["FinalMetricDataList"] = list(job.final_metrics)
    out["EnableNetworkIsolation"] = bool(request.get("EnableNetworkIsolation", False))
    out["EnableInterContainerTrafficEncryption"] = bool(
        request.get("EnableInterContainerTrafficEncryption", False)
    )
    out["EnableManagedSpotTraining"] = bool(request.get("EnableManagedSpotTraining", False))
    for key in ("CheckpointConfig",):
        if request.get(key) is not None:
            out[key] = copy.deepcopy(request[key])
    seconds = training_seconds(job)
    if seconds is not None:
        out["TrainingTimeInSeconds"] = seconds
        # Equal to the training time for a job that ran in one go; less by the time a job spent
        # interrupted or starting again.
        out["BillableTimeInSeconds"] = billable_seconds(job) or seconds
    for key in (
        "DebugHookConfig",
        "ExperimentConfig",
        "DebugRuleConfigurations",
        "TensorBoardOutputConfig",
    ):
        if request.get(key) is not None:
            out[key] = copy.deepcopy(request[key])
    if request.get("ProfilerConfig") is not None:
        out["ProfilerConfig"] = copy.deepcopy(request["ProfilerConfig"])
    if request.get("ProfilerRuleConfigurations") is not None:
        out["ProfilerRuleConfigurations"] = copy.deepcopy(request["ProfilerRuleConfigurations"])
    if request.get("ProfilerConfig") is not None:
        disabled = bool(request["ProfilerConfig"].get("DisableProfiler"))
        out["ProfilingStatus"] = "Disabled" if disabled else "Enabled"
    for key in ("Environment", "RetryStrategy", "RemoteDebugConfig", "InfraCheckConfig"):
        if request.get(key) is not None:
            out[key] = copy.deepcopy(request[key])
    return out


def summary(job: TrainingJob) -> dict[str, Any]:
    """A TrainingJobSummary as real 2025 responses carry it (no SecondaryStatus)."""
    out: dict[str, Any] = {
        "TrainingJobName": job.name,
        "TrainingJobArn": job.arn,
        "CreationTime": job.creation_time,
    }
    if job.training_end_time is not None:
        out["TrainingEndTime"] = job.training_end_time
    out["LastModifiedTime"] = job.last_modified_time
    out["TrainingJobStatus"] = job.status.value
    return out

"""What the runtime needs to run one job, read out of a validated CreateTrainingJob request.

The request is the wire-shaped dict the API accepted; ``JobSpec.from_request`` applies the
defaults SageMaker applies (effective input mode per channel, host names and instance groups,
MaxRuntimeInSeconds, checkpoint path) so that no other runtime module reads the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainforge.domain import contract
from trainforge.domain.hosts import Host, InstanceGroup, hosts_of

DEFAULT_MAX_RUNTIME_SECONDS = 86400


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    uri: str
    data_type: str
    distribution: str
    input_mode: str
    content_type: str | None = None
    compression: str = "None"
    record_wrapper: str = "None"
    shuffle_seed: int | None = None
    instance_groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckpointSpec:
    uri: str
    local_path: str


@dataclass(frozen=True)
class JobSpec:
    name: str
    arn: str
    region: str
    role_arn: str
    image: str
    entrypoint: tuple[str, ...] | None
    arguments: tuple[str, ...] | None
    hyperparameters: dict[str, str]
    environment: dict[str, str]
    channels: tuple[ChannelSpec, ...]
    output_path: str
    compression: str
    hosts: tuple[Host, ...]
    groups: tuple[InstanceGroup, ...]
    max_runtime_seconds: int
    checkpoint: CheckpointSpec | None
    network_isolation: bool
    volume_size_gb: int
    # The request as accepted, for the agents that rebuild this spec on other machines.
    request: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def output_prefix(self) -> str:
        return contract.output_prefix(self.output_path, self.name)

    @property
    def model_artifacts_uri(self) -> str:
        if self.compression == "NONE":
            return self.output_prefix + "/model/"
        return f"{self.output_prefix}/{contract.MODEL_ARCHIVE}"

    @classmethod
    def from_request(cls, name: str, arn: str, region: str, request: dict[str, Any]) -> JobSpec:
        algo = request.get("AlgorithmSpecification") or {}
        default_mode = algo.get("TrainingInputMode", "File")
        channels = []
        for channel in request.get("InputDataConfig") or []:
            source = channel.get("DataSource") or {}
            s3 = source.get("S3DataSource") or {}
            channels.append(
                ChannelSpec(
                    name=channel["ChannelName"],
                    uri=s3.get("S3Uri", ""),
                    data_type=s3.get("S3DataType", "S3Prefix"),
                    distribution=s3.get("S3DataDistributionType", "FullyReplicated"),
                    input_mode=channel.get("InputMode") or default_mode,
                    content_type=channel.get("ContentType"),
                    compression=channel.get("CompressionType", "None"),
                    record_wrapper=channel.get("RecordWrapperType", "None"),
                    shuffle_seed=(channel.get("ShuffleConfig") or {}).get("Seed"),
                    instance_groups=tuple(s3.get("InstanceGroupNames") or ()),
                )
            )
        resource = request.get("ResourceConfig") or {}
        layout = hosts_of(request)
        output = request.get("OutputDataConfig") or {}
        stopping = request.get("StoppingCondition") or {}
        checkpoint = request.get("CheckpointConfig")
        entrypoint = algo.get("ContainerEntrypoint")
        arguments = algo.get("ContainerArguments")
        return cls(
            name=name,
            arn=arn,
            region=region,
            role_arn=request.get("RoleArn", ""),
            image=algo.get("TrainingImage", ""),
            entrypoint=tuple(entrypoint) if entrypoint else None,
            arguments=tuple(arguments) if arguments else None,
            hyperparameters=dict(request.get("HyperParameters") or {}),
            environment=dict(request.get("Environment") or {}),
            channels=tuple(channels),
            output_path=output.get("S3OutputPath", ""),
            compression=output.get("CompressionType", "GZIP"),
            hosts=layout.hosts,
            groups=layout.groups,
            max_runtime_seconds=int(
                stopping.get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME_SECONDS)
            ),
            checkpoint=CheckpointSpec(
                uri=checkpoint["S3Uri"],
                local_path=checkpoint.get("LocalPath") or str(contract.DEFAULT_CHECKPOINT_PATH),
            )
            if checkpoint
            else None,
            network_isolation=bool(request.get("EnableNetworkIsolation", False)),
            volume_size_gb=int(resource.get("VolumeSizeInGB", 0) or 0),
            request=request,
        )

"""What the runtime needs to run one job, read out of a validated CreateTrainingJob request.

The request is the wire-shaped dict the API accepted; ``JobSpec.from_request`` applies the
defaults SageMaker applies (effective input mode per channel, host names and instance groups,
MaxRuntimeInSeconds, checkpoint path) so that no other runtime module reads the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trainforge.domain import contract
from trainforge.domain.hosts import Host, InstanceGroup, hosts_of
from trainforge.domain.request import (
    AlgorithmSpecification,
    CreateTrainingJobRequest,
    S3DataSource,
)

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
class SyncedDirSpec:
    """A directory of the container that is copied to ``uri`` while the job runs (spec §9,
    §14): the checkpoints, TensorBoard, debugger and profiler output."""

    name: str
    local_path: str
    uri: str


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
    # The request as accepted, for the agents that rebuild this spec on other machines.
    request: CreateTrainingJobRequest = field(compare=False, repr=False)
    synced: tuple[SyncedDirSpec, ...] = ()
    # The config files of the synced directories, by file name (spec §1.6).
    sync_configs: dict[str, Mapping[str, object]] = field(default_factory=dict, compare=False)

    @property
    def output_prefix(self) -> str:
        return contract.output_prefix(self.output_path, self.name)

    @property
    def model_artifacts_uri(self) -> str:
        if self.compression == "NONE":
            return self.output_prefix + "/model/"
        return f"{self.output_prefix}/{contract.MODEL_ARCHIVE}"

    @classmethod
    def from_request(
        cls, name: str, arn: str, region: str, request: CreateTrainingJobRequest
    ) -> JobSpec:
        algo = request.get("AlgorithmSpecification", _NO_ALGORITHM)
        default_mode = algo.get("TrainingInputMode", "File")
        channels = []
        for channel in request.get("InputDataConfig") or []:
            s3 = channel["DataSource"].get("S3DataSource", _NO_S3_SOURCE)
            shuffle = channel.get("ShuffleConfig")
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
                    shuffle_seed=shuffle["Seed"] if shuffle else None,
                    instance_groups=tuple(s3.get("InstanceGroupNames") or ()),
                )
            )
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
            synced=_synced_dirs(name, request),
            sync_configs=_sync_configs(request),
            request=request,
        )


# What a request without these members reads as (the API edge requires them for trainforge's jobs;
# the defaults keep a spec readable from any record the store holds).
_NO_ALGORITHM: AlgorithmSpecification = {"TrainingInputMode": "File"}
_NO_S3_SOURCE: S3DataSource = {"S3DataType": "S3Prefix", "S3Uri": ""}


def _under(prefix: str, *parts: str) -> str:
    return "/".join([prefix.rstrip("/"), *parts])


def _synced_dirs(name: str, request: CreateTrainingJobRequest) -> tuple[SyncedDirSpec, ...]:
    found = []
    checkpoint = request.get("CheckpointConfig")
    if checkpoint:
        local = checkpoint.get("LocalPath") or str(contract.DEFAULT_CHECKPOINT_PATH)
        found.append(SyncedDirSpec("checkpoints", local, checkpoint["S3Uri"]))
    tensorboard = request.get("TensorBoardOutputConfig")
    if tensorboard:
        local = tensorboard.get("LocalPath") or str(contract.DEFAULT_TENSORBOARD_PATH)
        uri = _under(tensorboard["S3OutputPath"], name, contract.TENSORBOARD_OUTPUT)
        found.append(SyncedDirSpec("tensorboard", local, uri))
    debug = request.get("DebugHookConfig")
    if debug:
        local = debug.get("LocalPath") or str(contract.DEFAULT_DEBUG_PATH)
        uri = _under(debug["S3OutputPath"], name, contract.DEBUG_OUTPUT)
        found.append(SyncedDirSpec("debug", local, uri))
    profiler = request.get("ProfilerConfig")
    if profiler and not profiler.get("DisableProfiler"):
        base = profiler.get("S3OutputPath") or (request.get("OutputDataConfig") or {}).get(
            "S3OutputPath", ""
        )
        uri = _under(base, name, contract.PROFILER_OUTPUT)
        found.append(SyncedDirSpec("profiler", str(contract.DEFAULT_PROFILER_PATH), uri))
    return tuple(found)


def _sync_configs(request: CreateTrainingJobRequest) -> dict[str, Mapping[str, object]]:
    """The config files SageMaker writes for these features: the API structures, with the
    local paths' defaults filled in."""
    configs: dict[str, Mapping[str, object]] = {}
    tensorboard = request.get("TensorBoardOutputConfig")
    if tensorboard:
        configs[contract.TENSORBOARD_CONFIG_JSON] = {
            "LocalPath": str(contract.DEFAULT_TENSORBOARD_PATH),
            **tensorboard,
        }
    debug = request.get("DebugHookConfig")
    if debug:
        configs[contract.DEBUG_HOOK_CONFIG_JSON] = {
            "LocalPath": str(contract.DEFAULT_DEBUG_PATH),
            **debug,
        }
    profiler = request.get("ProfilerConfig")
    if profiler:
        configs[contract.PROFILER_CONFIG_JSON] = dict(profiler)
    return configs

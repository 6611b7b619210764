"""The CreateTrainingJob request as typed structures, generated from botocore's
SageMaker model by ``trainforge.aws.request_types`` (do not edit: regenerate with
``python -m trainforge.aws.request_types > src/trainforge/domain/request.py``).

The API edge validates a request against the model and passes it down as these types: every
layer below the service reads members mypy knows. Enumerated strings stay ``str`` here; their
values were checked at the edge.
"""

# No postponed annotations here: TypedDict reads ``Required`` from the evaluated annotations,
# and every structure is defined after the structures it holds.
from typing import Required, TypedDict


class MetricDefinition(TypedDict, total=False):
    Name: Required[str]
    Regex: Required[str]


class TrainingRepositoryAuthConfig(TypedDict, total=False):
    TrainingRepositoryCredentialsProviderArn: Required[str]


class TrainingImageConfig(TypedDict, total=False):
    TrainingRepositoryAccessMode: Required[str]
    TrainingRepositoryAuthConfig: TrainingRepositoryAuthConfig


class AlgorithmSpecification(TypedDict, total=False):
    TrainingImage: str
    AlgorithmName: str
    TrainingInputMode: Required[str]
    MetricDefinitions: list[MetricDefinition]
    EnableSageMakerMetricsTimeSeries: bool
    ContainerEntrypoint: list[str]
    ContainerArguments: list[str]
    TrainingImageConfig: TrainingImageConfig


class ModelAccessConfig(TypedDict, total=False):
    AcceptEula: Required[bool]


class HubAccessConfig(TypedDict, total=False):
    HubContentArn: Required[str]


class S3DataSource(TypedDict, total=False):
    S3DataType: Required[str]
    S3Uri: Required[str]
    S3DataDistributionType: str
    AttributeNames: list[str]
    InstanceGroupNames: list[str]
    ModelAccessConfig: ModelAccessConfig
    HubAccessConfig: HubAccessConfig


class FileSystemDataSource(TypedDict, total=False):
    FileSystemId: Required[str]
    FileSystemAccessMode: Required[str]
    FileSystemType: Required[str]
    DirectoryPath: Required[str]


class DatasetSource(TypedDict, total=False):
    DatasetArn: Required[str]


class DataSource(TypedDict, total=False):
    S3DataSource: S3DataSource
    FileSystemDataSource: FileSystemDataSource
    DatasetSource: DatasetSource


class ShuffleConfig(TypedDict, total=False):
    Seed: Required[int]


class Channel(TypedDict, total=False):
    ChannelName: Required[str]
    DataSource: Required[DataSource]
    ContentType: str
    CompressionType: str
    RecordWrapperType: str
    InputMode: str
    ShuffleConfig: ShuffleConfig


class OutputDataConfig(TypedDict, total=False):
    KmsKeyId: str
    S3OutputPath: Required[str]
    CompressionType: str


class InstanceGroup(TypedDict, total=False):
    InstanceType: Required[str]
    InstanceCount: Required[int]
    InstanceGroupName: Required[str]


class PlacementSpecification(TypedDict, total=False):
    UltraServerId: str
    InstanceCount: Required[int]


class InstancePlacementConfig(TypedDict, total=False):
    EnableMultipleJobs: bool
    PlacementSpecifications: list[PlacementSpecification]


class InstancePreference(TypedDict, total=False):
    InstanceType: Required[str]
    InstanceCount: int
    TrainingPlanArns: list[str]


class ResourceConfig(TypedDict, total=False):
    InstanceType: str
    InstanceCount: int
    VolumeSizeInGB: int
    VolumeKmsKeyId: str
    KeepAlivePeriodInSeconds: int
    InstanceGroups: list[InstanceGroup]
    TrainingPlanArn: str
    InstancePlacementConfig: InstancePlacementConfig
    InstancePreferences: list[InstancePreference]
    SelectedInstanceType: str
    SelectedInstanceCount: int


class VpcConfig(TypedDict, total=False):
    SecurityGroupIds: Required[list[str]]
    Subnets: Required[list[str]]


class StoppingCondition(TypedDict, total=False):
    MaxRuntimeInSeconds: int
    MaxWaitTimeInSeconds: int
    MaxPendingTimeInSeconds: int


class Tag(TypedDict, total=False):
    Key: Required[str]
    Value: Required[str]


class CheckpointConfig(TypedDict, total=False):
    S3Uri: Required[str]
    LocalPath: str


class CollectionConfiguration(TypedDict, total=False):
    CollectionName: str
    CollectionParameters: dict[str, str]


class DebugHookConfig(TypedDict, total=False):
    LocalPath: str
    S3OutputPath: Required[str]
    HookParameters: dict[str, str]
    CollectionConfigurations: list[CollectionConfiguration]


class DebugRuleConfiguration(TypedDict, total=False):
    RuleConfigurationName: Required[str]
    LocalPath: str
    S3OutputPath: str
    RuleEvaluatorImage: Required[str]
    InstanceType: str
    VolumeSizeInGB: int
    RuleParameters: dict[str, str]


class TensorBoardOutputConfig(TypedDict, total=False):
    LocalPath: str
    S3OutputPath: Required[str]


class ExperimentConfig(TypedDict, total=False):
    ExperimentName: str
    TrialName: str
    TrialComponentDisplayName: str
    RunName: str


class ProfilerConfig(TypedDict, total=False):
    S3OutputPath: str
    ProfilingIntervalInMilliseconds: int
    ProfilingParameters: dict[str, str]
    DisableProfiler: bool


class ProfilerRuleConfiguration(TypedDict, total=False):
    RuleConfigurationName: Required[str]
    LocalPath: str
    S3OutputPath: str
    RuleEvaluatorImage: Required[str]
    InstanceType: str
    VolumeSizeInGB: int
    RuleParameters: dict[str, str]


class RetryStrategy(TypedDict, total=False):
    MaximumRetryAttempts: Required[int]


class RemoteDebugConfig(TypedDict, total=False):
    EnableRemoteDebug: bool


class InfraCheckConfig(TypedDict, total=False):
    EnableInfraCheck: bool


class SessionChainingConfig(TypedDict, total=False):
    EnableSessionTagChaining: bool


class ServerlessJobConfig(TypedDict, total=False):
    BaseModelArn: Required[str]
    AcceptEula: bool
    JobType: Required[str]
    CustomizationTechnique: str
    Peft: str
    EvaluationType: str
    EvaluatorArn: str
    SequenceLength: str


class MlflowConfig(TypedDict, total=False):
    MlflowResourceArn: Required[str]
    MlflowExperimentName: str
    MlflowRunName: str


class ModelPackageConfig(TypedDict, total=False):
    ModelPackageGroupArn: Required[str]
    SourceModelPackageArn: str


class CreateTrainingJobRequest(TypedDict, total=False):
    TrainingJobName: Required[str]
    HyperParameters: dict[str, str]
    AlgorithmSpecification: AlgorithmSpecification
    RoleArn: Required[str]
    InputDataConfig: list[Channel]
    OutputDataConfig: Required[OutputDataConfig]
    ResourceConfig: ResourceConfig
    VpcConfig: VpcConfig
    StoppingCondition: StoppingCondition
    Tags: list[Tag]
    EnableNetworkIsolation: bool
    EnableInterContainerTrafficEncryption: bool
    EnableManagedSpotTraining: bool
    CheckpointConfig: CheckpointConfig
    DebugHookConfig: DebugHookConfig
    DebugRuleConfigurations: list[DebugRuleConfiguration]
    TensorBoardOutputConfig: TensorBoardOutputConfig
    ExperimentConfig: ExperimentConfig
    ProfilerConfig: ProfilerConfig
    ProfilerRuleConfigurations: list[ProfilerRuleConfiguration]
    Environment: dict[str, str]
    RetryStrategy: RetryStrategy
    RemoteDebugConfig: RemoteDebugConfig
    InfraCheckConfig: InfraCheckConfig
    SessionChainingConfig: SessionChainingConfig
    ServerlessJobConfig: ServerlessJobConfig
    MlflowConfig: MlflowConfig
    ModelPackageConfig: ModelPackageConfig

"""The names of SageMaker's container contract: /opt/ml paths, config file names, environment
variable names, host and log stream names (spec §1, §3, §8, §11). Constants and tiny pure
functions only, so every other module spells the contract the same way.
"""

from __future__ import annotations

from pathlib import PurePosixPath

OPT_ML = PurePosixPath("/opt/ml")
INPUT = OPT_ML / "input"
INPUT_CONFIG = INPUT / "config"
INPUT_DATA = INPUT / "data"
MODEL = OPT_ML / "model"
OUTPUT = OPT_ML / "output"
OUTPUT_DATA = OUTPUT / "data"
FAILURE_FILE = OUTPUT / "failure"
DEFAULT_CHECKPOINT_PATH = OPT_ML / "checkpoints"

HYPERPARAMETERS_JSON = "hyperparameters.json"
INPUT_DATA_CONFIG_JSON = "inputdataconfig.json"
RESOURCE_CONFIG_JSON = "resourceconfig.json"
CHECKPOINT_CONFIG_JSON = "checkpointconfig.json"
TENSORBOARD_CONFIG_JSON = "tensorboardoutputconfig.json"
DEBUG_HOOK_CONFIG_JSON = "debughookconfig.json"
PROFILER_CONFIG_JSON = "profilerconfig.json"
# Where the directories SageMaker syncs while a job runs live by default (spec §14), and where
# under the job's output prefix their contents land.
DEFAULT_TENSORBOARD_PATH = OUTPUT / "tensorboard"
DEFAULT_DEBUG_PATH = OUTPUT / "tensors"
DEFAULT_PROFILER_PATH = OUTPUT / "profiler"
TENSORBOARD_OUTPUT = "tensorboard-output"
DEBUG_OUTPUT = "debug-output"
PROFILER_OUTPUT = "profiler-output"

ENV_JOB_NAME = "TRAINING_JOB_NAME"
ENV_JOB_ARN = "TRAINING_JOB_ARN"
ENV_REGION = "AWS_REGION"
ENV_DEFAULT_REGION = "AWS_DEFAULT_REGION"

# The word SageMaker passes as the container's command when no override is given.
TRAIN_ARGUMENT = "train"
HOMOGENEOUS_GROUP = "homogeneousCluster"
NETWORK_INTERFACE = "eth0"

LOG_GROUP = "/aws/sagemaker/TrainingJobs"

MODEL_ARCHIVE = "model.tar.gz"
OUTPUT_ARCHIVE = "output.tar.gz"
# SageMaker returns the first 1024 characters of the failure file, and FailureReason is at most
# 1024 characters long.
FAILURE_REASON_MAX = 1024


def host_name(index: int) -> str:
    """``algo-1`` … ``algo-N``; ``index`` is 1-based."""
    return f"algo-{index}"


def log_stream_name(job: str, host: str, started_epoch_seconds: int) -> str:
    return f"{job}/{host}-{started_epoch_seconds}"


def channel_path(channel: str) -> PurePosixPath:
    return INPUT_DATA / channel


def training_job_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{account_id}:training-job/{name}"


def output_prefix(output_path: str, job: str) -> str:
    """``<S3OutputPath>/<job>/output`` joined with single slashes."""
    return f"{output_path.rstrip('/')}/{job}/output"

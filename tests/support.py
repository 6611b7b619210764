"""Helpers for tests that run trainforge the way a user does: the real ``trainforge`` command in
a subprocess, a CreateTrainingJob request built by a factory, scripts delivered as channels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAINFORGE = str(Path(sys.executable).parent / "trainforge")
ROLE = "arn:aws:iam::000000000000:role/trainforge-test"


def unique_name(prefix: str = "job") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["TRAINFORGE_HOME"] = str(home)
    env.setdefault("TRAINFORGE_STOP_GRACE_SECONDS", "3")
    # A machine big enough that multi-host test jobs are not capped (capacity tests set less).
    env.setdefault("TRAINFORGE_CAPACITY_CPUS", "16")
    env.setdefault("TRAINFORGE_CAPACITY_MEMORY_MIB", "65536")
    env.update(extra)
    return env


def trainforge(
    home: Path, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRAINFORGE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env_for(home, **env),
    )


def start_trainforge(home: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TRAINFORGE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(home, **env),
    )


@dataclass
class RunResult:
    returncode: int
    describe: dict[str, Any]
    stdout: str
    stderr: str

    @property
    def status(self) -> str:
        return str(self.describe.get("TrainingJobStatus"))


def write_request(home: Path, request: dict[str, Any]) -> Path:
    path = home / f"{request.get('TrainingJobName', 'request')}.json"
    path.write_text(json.dumps(request))
    return path


def run_job(home: Path, request: dict[str, Any], timeout: float = 180, **env: str) -> RunResult:
    path = write_request(home, request)
    proc = trainforge(home, "run", "--cli-input-json", f"file://{path}", timeout=timeout, **env)
    describe = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return RunResult(proc.returncode, describe, proc.stdout, proc.stderr)


def code_channel(directory: Path, script: str, name: str = "train.sh") -> dict[str, Any]:
    """A local channel named ``code`` holding one shell script."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(script)
    return channel("code", f"file://{directory}")


def channel(name: str, uri: str, **extra: Any) -> dict[str, Any]:
    s3: dict[str, Any] = {"S3DataType": extra.pop("data_type", "S3Prefix"), "S3Uri": uri}
    if "distribution" in extra:
        s3["S3DataDistributionType"] = extra.pop("distribution")
    return {"ChannelName": name, "DataSource": {"S3DataSource": s3}, **extra}


def job_request(
    image: str,
    output: str,
    name: str | None = None,
    channels: list[dict[str, Any]] | None = None,
    entrypoint: list[str] | None = None,
    arguments: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    algo: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": "File"}
    if entrypoint is not None:
        algo["ContainerEntrypoint"] = entrypoint
    if arguments is not None:
        algo["ContainerArguments"] = arguments
    request: dict[str, Any] = {
        "TrainingJobName": name or unique_name(),
        "RoleArn": ROLE,
        "AlgorithmSpecification": algo,
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }
    if channels:
        request["InputDataConfig"] = channels
    request.update(extra)
    return request


def script_job(
    image: str, home: Path, script: str, output: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A job that runs ``script`` with /bin/sh, delivered through a local ``code`` channel."""
    code = code_channel(home / f"code-{uuid.uuid4().hex[:6]}", script)
    channels = [code, *extra.pop("channels", [])]
    return job_request(
        image,
        output or f"file://{home / 'output'}",
        channels=channels,
        entrypoint=["/bin/sh"],
        arguments=["/opt/ml/input/data/code/train.sh"],
        **extra,
    )


def log_messages(home: Path, name: str) -> list[str]:
    proc = trainforge(home, "logs", name)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()

"""runtime.workspace: the /opt/ml/input/config files and the job's directory tree."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.workspace import (
    Workspace,
    channels_for_host,
    checkpoint_config,
    hyperparameters_config,
    input_data_config,
    resource_config,
)

ARN = "arn:aws:sagemaker:us-east-1:000000000000:training-job/job"


def request(**extra: Any) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 3},
        **extra,
    }


def channel(name: str, **fields: Any) -> dict[str, Any]:
    s3 = {"S3DataType": "S3Prefix", "S3Uri": f"s3://b/{name}/"}
    s3.update(fields.pop("s3", {}))
    return {"ChannelName": name, "DataSource": {"S3DataSource": s3}, **fields}


def spec_of(req: dict[str, Any]) -> JobSpec:
    return JobSpec.from_request("job", ARN, "us-east-1", req)


GROUPS = {
    "InstanceGroups": [
        {"InstanceGroupName": "cpu", "InstanceType": "ml.c5.xlarge", "InstanceCount": 1},
        {"InstanceGroupName": "gpu", "InstanceType": "ml.g5.xlarge", "InstanceCount": 2},
    ]
}


def test_input_data_config_keys_and_order() -> None:
    spec = spec_of(
        request(
            InputDataConfig=[
                channel("train", ContentType="text/csv"),
                channel(
                    "test",
                    InputMode="FastFile",
                    RecordWrapperType="RecordIO",
                    s3={"S3DataDistributionType": "ShardedByS3Key"},
                ),
            ]
        )
    )
    config = input_data_config(spec, spec.hosts[0])
    assert config == {
        "train": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
        "test": {
            "TrainingInputMode": "FastFile",
            "S3DistributionType": "ShardedByS3Key",
            "RecordWrapperType": "RecordIO",
        },
    }
    assert list(config) == ["train", "test"]
    assert list(config["train"]) == [
        "ContentType",
        "TrainingInputMode",
        "S3DistributionType",
        "RecordWrapperType",
    ]
    assert json.dumps(config["test"]) == (
        '{"TrainingInputMode": "FastFile", "S3DistributionType": "ShardedByS3Key", '
        '"RecordWrapperType": "RecordIO"}'
    )


def test_resource_config_for_three_hosts() -> None:
    spec = spec_of(request())
    config = resource_config(spec, spec.hosts[1])
    assert config == {
        "current_host": "algo-2",
        "current_instance_type": "ml.m5.large",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1", "algo-2", "algo-3"],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": "ml.m5.large",
                "hosts": ["algo-1", "algo-2", "algo-3"],
            }
        ],
        "network_interface_name": "eth0",
    }
    assert list(config) == [
        "current_host",
        "current_instance_type",
        "current_group_name",
        "hosts",
        "instance_groups",
        "network_interface_name",
    ]


def test_resource_config_for_instance_groups() -> None:
    spec = spec_of(request(ResourceConfig=GROUPS))
    config = resource_config(spec, spec.hosts[2])
    assert config == {
        "current_host": "algo-3",
        "current_instance_type": "ml.g5.xlarge",
        "current_group_name": "gpu",
        "hosts": ["algo-1", "algo-2", "algo-3"],
        "instance_groups": [
            {"instance_group_name": "cpu", "instance_type": "ml.c5.xlarge", "hosts": ["algo-1"]},
            {
                "instance_group_name": "gpu",
                "instance_type": "ml.g5.xlarge",
                "hosts": ["algo-2", "algo-3"],
            },
        ],
        "network_interface_name": "eth0",
    }


def test_channels_restricted_to_instance_groups() -> None:
    spec = spec_of(
        request(
            ResourceConfig=GROUPS,
            InputDataConfig=[
                channel("both", s3={"InstanceGroupNames": ["cpu", "gpu"]}),
                channel("gpu-only", s3={"InstanceGroupNames": ["gpu"]}),
            ],
        )
    )
    cpu_host, gpu_host = spec.hosts[0], spec.hosts[1]
    assert [c.name for c in channels_for_host(spec, cpu_host)] == ["both"]
    assert [c.name for c in channels_for_host(spec, gpu_host)] == ["both", "gpu-only"]
    assert list(input_data_config(spec, cpu_host)) == ["both"]


def test_checkpoint_and_hyperparameters_config() -> None:
    assert checkpoint_config(spec_of(request())) is None
    spec = spec_of(request(CheckpointConfig={"S3Uri": "s3://b/ck"}, HyperParameters={"a": "1"}))
    config = checkpoint_config(spec)
    assert config == {"LocalPath": "/opt/ml/checkpoints", "S3Uri": "s3://b/ck"}
    assert config is not None
    assert list(config) == ["LocalPath", "S3Uri"]
    assert hyperparameters_config(spec) == {"a": "1"}


def tree(root: Path) -> dict[str, str]:
    """Every path under root → 'd0755' / 'f0644' (type and permission bits)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            kind = "d" if stat.S_ISDIR(mode) else "f"
            out[str(path.relative_to(root))] = f"{kind}{stat.S_IMODE(mode):04o}"
    return out


@pytest.fixture
def restrictive_umask() -> Any:
    old = os.umask(0o077)
    yield
    os.umask(old)


@pytest.mark.usefixtures("restrictive_umask")
def test_create_makes_the_tree_with_its_modes(tmp_path: Path) -> None:
    spec = spec_of(
        request(
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2},
            InputDataConfig=[channel("train"), channel("val")],
            HyperParameters={"epochs": "3"},
            CheckpointConfig={"S3Uri": "s3://b/ck"},
        )
    )
    workspace = Workspace.at(tmp_path / "jobs", spec)
    assert workspace.root == tmp_path / "jobs" / "job"
    workspace.create(spec)
    host_tree = {
        "": "d0755",
        "/input": "d0755",
        "/input/config": "d0755",
        "/input/config/hyperparameters.json": "f0644",
        "/input/config/inputdataconfig.json": "f0644",
        "/input/config/resourceconfig.json": "f0644",
        "/input/config/checkpointconfig.json": "f0644",
        "/input/data": "d0755",
        "/input/data/train": "d0755",
        "/input/data/val": "d0755",
        "/model": "d0755",
        "/output": "d0755",
        "/output/data": "d0755",
        "/checkpoints": "d0755",
    }
    # "hosts" itself is checked in test_hosts_directory_mode_ignores_the_umask.
    expected = {"hosts": "d", "channels": "d0755", "scratch": "d0755"}
    for host in ("algo-1", "algo-2"):
        expected.update({f"hosts/{host}{k}": v for k, v in host_tree.items()})
    assert without_hosts_mode(tree(workspace.root)) == expected
    assert stat.S_IMODE(workspace.root.stat().st_mode) == 0o755

    config = workspace.host("algo-2").config_dir
    assert json.loads((config / "hyperparameters.json").read_text()) == {"epochs": "3"}
    assert json.loads((config / "resourceconfig.json").read_text())["current_host"] == "algo-2"
    assert json.loads((config / "checkpointconfig.json").read_text()) == {
        "LocalPath": "/opt/ml/checkpoints",
        "S3Uri": "s3://b/ck",
    }
    assert list(json.loads((config / "inputdataconfig.json").read_text())) == ["train", "val"]

    # Safe to call again; nothing is left over from the atomic writes.
    workspace.create(spec)
    assert without_hosts_mode(tree(workspace.root)) == expected


def without_hosts_mode(found: dict[str, str]) -> dict[str, str]:
    return {**found, "hosts": found["hosts"][0]}


@pytest.mark.usefixtures("restrictive_umask")
def test_hosts_directory_mode_ignores_the_umask(tmp_path: Path) -> None:
    spec = spec_of(request())
    workspace = Workspace.at(tmp_path, spec)
    workspace.create(spec)
    assert stat.S_IMODE((workspace.root / "hosts").stat().st_mode) == 0o755


def test_create_without_checkpoint_or_channels(tmp_path: Path) -> None:
    spec = spec_of(request(ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1}))
    workspace = Workspace.at(tmp_path, spec)
    workspace.create(spec)
    host = workspace.host("algo-1")
    assert sorted(p.name for p in host.config_dir.iterdir()) == [
        "hyperparameters.json",
        "inputdataconfig.json",
        "resourceconfig.json",
    ]
    assert json.loads((host.config_dir / "inputdataconfig.json").read_text()) == {}
    assert json.loads((host.config_dir / "hyperparameters.json").read_text()) == {}
    assert not host.checkpoint_dir.exists()
    assert list(host.data_dir.iterdir()) == []


def test_host_paths(tmp_path: Path) -> None:
    spec = spec_of(request())
    workspace = Workspace.at(tmp_path, spec)
    host = workspace.host("algo-3")
    assert host.root == tmp_path / "job" / "hosts" / "algo-3"
    assert host.output_data_dir == host.root / "output" / "data"
    assert workspace.channels_dir == tmp_path / "job" / "channels"
    with pytest.raises(KeyError):
        workspace.host("algo-4")


def test_remove(tmp_path: Path) -> None:
    spec = spec_of(request())
    workspace = Workspace.at(tmp_path, spec)
    workspace.create(spec)
    workspace.remove()
    assert not workspace.root.exists()
    workspace.remove()  # idempotent

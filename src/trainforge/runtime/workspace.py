"""Per-job host directories and the /opt/ml/input/config files (spec §1).

Layout under ``<TRAINFORGE_HOME>/jobs/<job>/``::

    hosts/algo-<i>/             mounted at /opt/ml in host i's container
        input/config/*.json     mounted read-only over /opt/ml/input/config
        input/data/<channel>/   empty mount points; the channel data is mounted read-only on them
        input/data/<channel>_N  Pipe channels: one FIFO per epoch (runtime.pipes)
        model/  output/data/  checkpoints/
    channels/<channel>/         channel data staged from S3 (never from local paths: those are
                                mounted where they are)
    pipes/<channel>.json        the objects of a Pipe channel, listed when the job starts
    scratch/                    archives being built, RecordIO records being framed

The config writers are pure functions of the JobSpec, so their exact keys are unit-tested.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypedDict

from trainforge.domain import contract
from trainforge.domain.hosts import Host
from trainforge.errors import JobFailure
from trainforge.runtime.jobspec import ChannelSpec, JobSpec, SyncedDirSpec

_DIR_MODE = 0o755
_FILE_MODE = 0o644


def channel_directory(parent: Path, name: str) -> Path:
    """``parent/name``, refusing a name that would not be a directory of its own in it."""
    path = parent / name
    if name in ("", ".", "..") or "/" in name or path.resolve().parent != parent.resolve():
        raise JobFailure.client(f"Invalid channel name {name!r}: it names no directory of its own.")
    return path


def channels_for_host(spec: JobSpec, host: Host) -> list[ChannelSpec]:
    """Channels restricted with InstanceGroupNames reach only hosts of those groups."""
    return [c for c in spec.channels if not c.instance_groups or host.group in c.instance_groups]


def channel_hosts(spec: JobSpec, channel: ChannelSpec) -> list[Host]:
    """The hosts that read ``channel``, in host order (ShardedByS3Key splits among them)."""
    return [h for h in spec.hosts if channel in channels_for_host(spec, h)]


def hyperparameters_config(spec: JobSpec) -> dict[str, str]:
    return dict(spec.hyperparameters)


def input_data_config(spec: JobSpec, host: Host) -> dict[str, dict[str, str]]:
    config: dict[str, dict[str, str]] = {}
    for channel in channels_for_host(spec, host):
        entry: dict[str, str] = {}
        if channel.content_type is not None:
            entry["ContentType"] = channel.content_type
        entry["TrainingInputMode"] = channel.input_mode
        # The platform writes S3DistributionType, not the request's S3DataDistributionType.
        entry["S3DistributionType"] = channel.distribution
        entry["RecordWrapperType"] = channel.record_wrapper
        config[channel.name] = entry
    return config


class InstanceGroupEntry(TypedDict):
    instance_group_name: str
    instance_type: str
    hosts: list[str]


class ResourceConfigFile(TypedDict):
    """``resourceconfig.json`` as SageMaker writes it (spec §1.4)."""

    current_host: str
    current_instance_type: str
    current_group_name: str
    hosts: list[str]
    instance_groups: list[InstanceGroupEntry]
    network_interface_name: str


def resource_config(spec: JobSpec, host: Host) -> ResourceConfigFile:
    return {
        "current_host": host.name,
        "current_instance_type": host.instance_type,
        "current_group_name": host.group,
        "hosts": [h.name for h in spec.hosts],
        "instance_groups": [
            {
                "instance_group_name": group.name,
                "instance_type": group.instance_type,
                "hosts": list(group.hosts),
            }
            for group in spec.groups
        ],
        "network_interface_name": contract.NETWORK_INTERFACE,
    }


def checkpoint_config(spec: JobSpec) -> dict[str, str] | None:
    if spec.checkpoint is None:
        return None
    return {"LocalPath": spec.checkpoint.local_path, "S3Uri": spec.checkpoint.uri}


@dataclass(frozen=True)
class HostWorkspace:
    host: Host
    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "input" / "data"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    def synced_dir(self, synced: SyncedDirSpec) -> Path:
        """Where a synced directory of the container lives on this side: in the host's tree
        when its LocalPath is under /opt/ml, beside the tree (and mounted) otherwise."""
        if synced.name == "checkpoints":
            return self.checkpoint_dir
        local = PurePosixPath(synced.local_path)
        if local.is_relative_to(contract.OPT_ML) and local != contract.OPT_ML:
            return self.root / local.relative_to(contract.OPT_ML)
        return self.root.parent / f"{self.host.name}.{synced.name}"

    def synced_mounts(self, spec: JobSpec) -> list[tuple[Path, PurePosixPath]]:
        """(directory here, path in the container) of the synced directories that need a
        mount of their own (the checkpoints always get one, at their LocalPath)."""
        mounts = []
        for synced in spec.synced:
            here = self.synced_dir(synced)
            if synced.name == "checkpoints" or not here.is_relative_to(self.root):
                mounts.append((here, PurePosixPath(synced.local_path)))
        return mounts


@dataclass(frozen=True)
class Workspace:
    root: Path
    hosts: tuple[HostWorkspace, ...]

    @property
    def channels_dir(self) -> Path:
        return self.root / "channels"

    @property
    def scratch_dir(self) -> Path:
        return self.root / "scratch"

    def host(self, name: str) -> HostWorkspace:
        for item in self.hosts:
            if item.host.name == name:
                return item
        raise KeyError(name)

    @classmethod
    def at(cls, jobs_dir: Path, spec: JobSpec) -> Workspace:
        root = jobs_dir / spec.name
        return cls(root, tuple(HostWorkspace(h, root / "hosts" / h.name) for h in spec.hosts))

    def create(self, spec: JobSpec) -> None:
        """Make every directory and write the config files; safe to call again."""
        for path in (self.root, self.root / "hosts", self.channels_dir, self.scratch_dir):
            _mkdir(path)
        for hw in self.hosts:
            for path in (
                hw.root,
                hw.root / "input",
                hw.config_dir,
                hw.data_dir,
                hw.model_dir,
                hw.output_dir,
                hw.output_data_dir,
            ):
                _mkdir(path)
            for channel in channels_for_host(spec, hw.host):
                directory = channel_directory(hw.data_dir, channel.name)
                if channel.input_mode != "Pipe":  # Pipe channels are FIFOs (runtime.pipes)
                    _mkdir(directory)
            for synced in spec.synced:
                _mkdir(hw.synced_dir(synced))
            self._write_config(spec, hw)

    @staticmethod
    def _write_config(spec: JobSpec, hw: HostWorkspace) -> None:
        files: dict[str, object] = {
            contract.HYPERPARAMETERS_JSON: hyperparameters_config(spec),
            contract.INPUT_DATA_CONFIG_JSON: input_data_config(spec, hw.host),
            contract.RESOURCE_CONFIG_JSON: resource_config(spec, hw.host),
        }
        checkpoint = checkpoint_config(spec)
        if checkpoint is not None:
            files[contract.CHECKPOINT_CONFIG_JSON] = checkpoint
        files.update(spec.sync_configs)
        for name, content in files.items():
            path = hw.config_dir / name
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(content), encoding="utf-8")
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, path)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, _DIR_MODE)

"""Input channels in File mode: S3 data downloaded under the job's workspace, local paths mounted
where they are (spec §7), at ``/opt/ml/input/data/<channel>``. A downloaded File channel is the
host's own copy and writable, as on SageMaker's instances (the SDK v3's ModelTrainer chmods and
unpacks files in its ``sm_drivers`` and ``code`` channels); a local path mounted in place is
read-only (the user's data is not the job's to change), and so is a FastFile channel (staged
like File, read-only as SageMaker's streamed view is). A Pipe channel is listed here by the same
rules and its first FIFO made; ``runtime.pipes`` feeds it.

The S3 key → file path rule of §7.2 lives in ``relative_path``; ``check_inputs`` is the
synchronous "no objects under this prefix" check that CreateTrainingJob makes.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trainforge.domain import contract
from trainforge.domain.hosts import Host
from trainforge.engines.base import Mount
from trainforge.errors import Fault, JobFailure, StorageError
from trainforge.runtime.fifos import data_directory, fifo_name, make_fifo
from trainforge.runtime.jobspec import ChannelSpec, JobSpec
from trainforge.runtime.selection import host_objects
from trainforge.runtime.workspace import Workspace, channel_directory, channel_hosts
from trainforge.storage.base import Download, Storage
from trainforge.storage.location import BadLocation, Location, parse_location

_MANIFEST_MAX_BYTES = 256 << 20


@dataclass
class StagingReport:
    objects: int = 0
    bytes: int = 0
    mounts: dict[str, list[Mount]] = field(default_factory=dict)


def no_objects_message(uri: str, region: str, role_arn: str, bucket: str) -> str:
    """SageMaker's text for an S3 input that matches nothing (observed, spec §7.2)."""
    return (
        f'No S3 objects found under S3 URL "{uri}" given in input data source. Please ensure '
        f"that the bucket exists in the selected region ({region}), that objects exist under "
        f'that S3 prefix, and that the role "{role_arn}" has "s3:ListBucket" permissions on '
        f'bucket "{bucket}".'
    )


def relative_path(prefix: str, key: str) -> str | None:
    """Where object ``key`` lands inside the channel directory, for S3Prefix ``prefix``.

    None for zero-byte "folder" keys. The four cases of §7.2: prefix ending in "/", key
    continuing the prefix with "/", key equal to the prefix, and a partial name match (which
    keeps the matched name whole, as remote SageMaker does).
    """
    if key.endswith("/"):
        return None
    if not prefix or prefix.endswith("/"):
        return key[len(prefix) :]
    if key == prefix:
        return posixpath.basename(key)
    if key[len(prefix)] == "/":
        return key[len(prefix) + 1 :]
    directory = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    return key[len(directory) :]


def safe_destination(root: Path, relative: str) -> Path:
    """``root/relative``, refusing any key that would land outside ``root``."""
    normal = posixpath.normpath(relative)
    if not relative or normal.startswith(("../", "/")) or normal in ("..", "."):
        raise JobFailure(
            Fault.CLIENT,
            f"Data download failed: the object key part {relative!r} would be written outside "
            "the channel directory.",
        )
    return root / normal


def _location(uri: str) -> Location:
    try:
        return parse_location(uri)
    except BadLocation as exc:
        raise JobFailure(Fault.CLIENT, f"Invalid input data location: {exc}") from exc


class Stager:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # -- the CreateTrainingJob check ---------------------------------------------------------

    def missing_input(self, spec: JobSpec) -> str | None:
        """The message for the first channel whose data does not exist, else None."""
        for channel in spec.channels:
            location = parse_location(channel.uri)
            if location.is_local:
                if not os.path.exists(location.path):
                    return (
                        f'No data found at local path "{location.path}" given in input data '
                        f'source of channel "{channel.name}". Please ensure that the path exists '
                        "on the machine that runs trainforge."
                    )
                continue
            store = self.storage.store_for(location)
            try:
                first = next(iter(store.list(location)), None)
            except StorageError as exc:
                return (
                    f'Cannot read the input data of channel "{channel.name}" at "{channel.uri}": '
                    f"{exc}. trainforge reads S3 with the AWS configuration of the process that "
                    "runs it (credentials, profile, AWS_ENDPOINT_URL_S3): set it where `trainforge "
                    "serve` or `trainforge run` runs."
                )
            if first is None:
                return no_objects_message(channel.uri, spec.region, spec.role_arn, location.bucket)
        return None

    # -- staging -----------------------------------------------------------------------------

    def stage(
        self, spec: JobSpec, workspace: Workspace, should_stop: Callable[[], bool]
    ) -> StagingReport:
        """Stage every channel for the hosts of ``workspace``: all of the job's hosts on one
        machine, or the one host an agent prepares on its node. Sharding counts all the hosts
        that read a channel, wherever they run."""
        report = StagingReport(mounts={hw.host.name: [] for hw in workspace.hosts})
        for channel in spec.channels:
            hosts = channel_hosts(spec, channel)
            self._stage_channel(spec, channel, hosts, workspace, should_stop, report)
        return report

    def _stage_channel(
        self,
        spec: JobSpec,
        channel: ChannelSpec,
        hosts: list[Host],
        workspace: Workspace,
        should_stop: Callable[[], bool],
        report: StagingReport,
    ) -> None:
        target = contract.channel_path(channel.name)
        location = _location(channel.uri)
        sharded = channel.distribution == "ShardedByS3Key" and len(hosts) > 1
        here = {hw.host.name for hw in workspace.hosts}
        if channel.input_mode == "Pipe":
            self._plan_pipe(spec, channel, hosts, location, workspace, report)
            return
        if location.is_local and channel.data_type == "S3Prefix" and not sharded:
            # O(1): the container reads the user's data in place, through a read-only mount.
            source = Path(location.path)
            if not source.exists():
                raise JobFailure(Fault.CLIENT, f"Input data path {source} does not exist.")
            for host in hosts:
                if host.name not in here:
                    continue
                if source.is_dir():
                    report.mounts[host.name].append(Mount(str(source), target, True))
                else:
                    report.mounts[host.name].append(Mount(str(source), target / source.name, True))
            return
        objects = self._objects(spec, channel, location)
        base = channel_directory(workspace.channels_dir, channel.name)
        read_only = channel.input_mode != "File"
        downloaded: Path | None = None
        for index, host in enumerate(hosts, start=1):
            if host.name not in here:
                continue
            chosen = host_objects(objects, channel.shuffle_seed, index, len(hosts), sharded)
            root = base / host.name if sharded else base
            if not sharded and downloaded is not None:
                if read_only:
                    # Hosts on one machine share one copy they cannot change.
                    report.mounts[host.name].append(Mount(str(root), target, True))
                    continue
                # A host may change its copy: the others keep theirs whole. Channel names
                # cannot hold "@", so this never names another channel's directory.
                root = base.with_name(f"{base.name}@{host.name}")
                _copy_tree(downloaded, root, f"the input data of channel '{channel.name}'")
                report.mounts[host.name].append(Mount(str(root), target, False))
                continue
            downloaded = root
            root.mkdir(parents=True, exist_ok=True)
            downloads = [
                Download(source, safe_destination(root, rel), size) for source, rel, size in chosen
            ]
            self._download(downloads, should_stop, f"the input data of channel '{channel.name}'")
            report.objects += len(downloads)
            report.bytes += sum(d.size for d in downloads)
            report.mounts[host.name].append(Mount(str(root), target, read_only))

    def _plan_pipe(
        self,
        spec: JobSpec,
        channel: ChannelSpec,
        hosts: list[Host],
        location: Location,
        workspace: Workspace,
        report: StagingReport,
    ) -> None:
        """List the channel once for the feeders, and make its first FIFO on each host here."""
        from trainforge.runtime.pipes import PipeObject, plan_path, write_plan  # Pipe mode only

        objects = self._objects(spec, channel, location)
        unsized = channel.data_type == "ManifestFile"
        plan = [PipeObject(source, None if unsized else size) for source, _, size in objects]
        names = {h.name for h in hosts}
        try:
            write_plan(plan_path(workspace, channel.name), plan)
            for hw in workspace.hosts:
                if hw.host.name in names:
                    with data_directory(hw) as directory:
                        make_fifo(directory, fifo_name(channel.name, 0))
        except OSError as exc:
            raise JobFailure.platform(
                f"cannot prepare Pipe channel '{channel.name}': {exc}"
            ) from exc
        report.objects += len(plan)

    def _objects(
        self, spec: JobSpec, channel: ChannelSpec, location: Location
    ) -> list[tuple[Location, str, int]]:
        """(source, relative path, size) for every object of the channel, in key order (a local
        directory's files in the order of their relative paths)."""
        store = self.storage.store_for(location)
        try:
            if channel.data_type == "ManifestFile":
                return self._manifest_objects(location)
            found = []
            for info in store.list(location):
                if location.is_local:
                    rel = (
                        os.path.relpath(info.key, location.path)
                        if os.path.isdir(location.path)
                        else os.path.basename(info.key)
                    )
                    found.append((Location(location.scheme, "", info.key), rel, info.size))
                    continue
                rel_key = relative_path(location.key, info.key)
                if rel_key is not None:
                    source = Location(location.scheme, location.bucket, info.key)
                    found.append((source, rel_key, info.size))
        except StorageError as exc:
            raise JobFailure(Fault.CLIENT, f"Data download failed: {exc}") from exc
        if location.is_local:
            found.sort(key=lambda item: item[1])
        if not found:
            raise JobFailure(
                Fault.CLIENT,
                no_objects_message(channel.uri, spec.region, spec.role_arn, location.bucket),
            )
        return found

    def _manifest_objects(self, location: Location) -> list[tuple[Location, str, int]]:
        raw = self.storage.store_for(location).read_bytes(location, _MANIFEST_MAX_BYTES)
        try:
            entries = json.loads(raw)
            prefix = entries[0]["prefix"]
            suffixes = entries[1:]
            if not isinstance(prefix, str) or not all(isinstance(s, str) for s in suffixes):
                raise TypeError("entries must be strings")
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise JobFailure(
                Fault.CLIENT,
                f"Data download failed: the manifest file {location} is not a JSON array whose "
                f'first element is {{"prefix": "s3://bucket/prefix/"}} followed by relative keys '
                f"({exc}).",
            ) from exc
        base = _location(prefix)
        # A manifest read from S3 names objects of its own bucket (as SageMaker requires); only
        # a manifest the requester gave as a local file may name local files.
        if not location.is_local and (base.is_local or base.bucket != location.bucket):
            raise JobFailure(
                Fault.CLIENT,
                f"Data download failed: the manifest prefix {prefix} is not in the manifest's "
                f"bucket {location.bucket}.",
            )
        # Full URI = prefix + entry (spec §7.3). Sizes are unknown (0): one GET per entry.
        return [(_location(prefix + suffix), suffix, 0) for suffix in suffixes]

    def restore_checkpoints(
        self, spec: JobSpec, workspace: Workspace, should_stop: Callable[[], bool]
    ) -> None:
        """Copy what CheckpointConfig.S3Uri holds into every host's checkpoint directory (§9)."""
        if spec.checkpoint is None:
            return
        location = _location(spec.checkpoint.uri)
        store = self.storage.store_for(location)
        try:
            objects = list(store.list(location))
        except StorageError as exc:
            raise JobFailure(Fault.CLIENT, f"Checkpoint download failed: {exc}") from exc
        prefix = (
            location.key if location.key.endswith("/") or not location.key else location.key + "/"
        )
        for hw in workspace.hosts:
            downloads = []
            for info in objects:
                if location.is_local:
                    rel = os.path.relpath(info.key, location.path)
                    source = Location(location.scheme, "", info.key)
                else:
                    if not info.key.startswith(prefix) or info.key.endswith("/"):
                        continue
                    rel = info.key[len(prefix) :]
                    source = Location(location.scheme, location.bucket, info.key)
                downloads.append(
                    Download(source, safe_destination(hw.checkpoint_dir, rel), info.size)
                )
            self._download(downloads, should_stop, "restoring the checkpoints")

    def _download(
        self, downloads: list[Download], should_stop: Callable[[], bool], what: str
    ) -> None:
        if not downloads:
            return
        _check_space(downloads, what)
        store = self.storage.store_for(downloads[0].source)
        try:
            store.download(downloads, should_stop)
        except StorageError as exc:
            raise JobFailure(Fault.CLIENT, f"Data download failed: {exc}") from exc


def _copy_tree(source: Path, dest: Path, what: str) -> None:
    """A host's own copy of what another host here downloaded, refused before a byte is written
    when the disk cannot hold it."""
    files = [p for p in source.rglob("*") if p.is_file()]
    _check_space_for(sum(p.stat().st_size for p in files), dest.parent, what)
    try:
        shutil.copytree(source, dest, dirs_exist_ok=True)
    except OSError as exc:
        raise JobFailure.platform(f"cannot copy {what} for another host: {exc}") from exc


def _check_space(downloads: list[Download], what: str) -> None:
    """Refuse, before writing a byte, a download that cannot fit on the disk it goes to."""
    _check_space_for(sum(d.size for d in downloads), downloads[0].dest.parent, what)


def _check_space_for(needed: int, directory: Path, what: str) -> None:
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return
    if needed > free:
        raise JobFailure.client(
            f"Data download failed: {what} needs {_mib(needed)} and the disk that holds "
            f"{directory} has {_mib(free)} free. Free some space there, or give the job less "
            "data."
        )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"

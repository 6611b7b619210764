"""Uploads what a job produced to ``<S3OutputPath>/<job>/output/`` (spec §6): ``model.tar.gz``
(or ``model/...`` file by file with CompressionType NONE), ``output.tar.gz`` when
``/opt/ml/output/data`` holds anything, and the last changes of the synced directories
(checkpoints, TensorBoard, debugger and profiler output: ``runtime.sync``).
"""

from __future__ import annotations

from pathlib import Path

from trainforge.domain import contract
from trainforge.runtime.artifacts import Entry, merged_tree, write_tar_gz
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.sync import flush_host
from trainforge.runtime.workspace import Workspace
from trainforge.storage.base import Storage
from trainforge.storage.location import Location, parse_location


class Collector:
    def __init__(
        self, storage: Storage, spec: JobSpec, workspace: Workspace, flush_synced: bool = True
    ) -> None:
        self.storage = storage
        self.spec = spec
        self.workspace = workspace
        # A host's agent flushes its own synced directories; the merging host must not again.
        self.flush_synced = flush_synced

    def upload(self) -> list[str]:
        """Upload every artifact; returns warnings about what could not be carried over."""
        warnings: list[str] = []
        prefix = parse_location(self.spec.output_prefix)
        skipped: list[str] = []
        model = merged_tree([hw.model_dir for hw in self.workspace.hosts], skipped)
        if self.spec.compression == "NONE":
            warnings += self._upload_files(model, prefix.child("model"))
        else:
            self._upload_archive(model, prefix.child(contract.MODEL_ARCHIVE))
        output = merged_tree([hw.output_data_dir for hw in self.workspace.hosts], skipped)
        if output:
            self._upload_archive(output, prefix.child(contract.OUTPUT_ARCHIVE))
        if self.flush_synced:
            for hw in self.workspace.hosts:
                warnings += flush_host(self.spec, self.workspace, hw, self.storage)
        if skipped:
            warnings.append(
                "Left out of the artifacts (not regular files or directories): "
                + ", ".join(skipped[:10])
            )
        return warnings

    def _upload_archive(self, entries: list[Entry], dest: Location) -> None:
        if dest.is_local:
            target = Path(dest.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_tar_gz(entries, target)
            return
        archive = self.workspace.scratch_dir / dest.key.rsplit("/", 1)[-1]
        archive.parent.mkdir(parents=True, exist_ok=True)
        write_tar_gz(entries, archive)
        try:
            self.storage.store_for(dest).upload_file(archive, dest)
        finally:
            archive.unlink(missing_ok=True)

    def _upload_files(self, entries: list[Entry], prefix: Location) -> list[str]:
        store = self.storage.store_for(prefix)
        links = []
        for entry in entries:
            if entry.link_target is not None:
                links.append(entry.relative)
            elif entry.is_file:
                store.upload_file(entry.path, prefix.child(entry.relative))
        if links:
            return [
                f"Symbolic links are not uploaded to {prefix} (S3 has no links): "
                + ", ".join(links[:10])
            ]
        return []

"""Uploads what a job produced to ``<S3OutputPath>/<job>/output/`` (spec §6): ``model.tar.gz``
(or ``model/...`` file by file with CompressionType NONE), ``output.tar.gz`` when
``/opt/ml/output/data`` holds anything, and the final state of the checkpoint directory.
"""

from __future__ import annotations

from pathlib import Path

from trainforge.domain import contract
from trainforge.runtime.artifacts import Entry, merged_tree, write_tar_gz
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.workspace import Workspace
from trainforge.storage.base import Storage
from trainforge.storage.location import Location, parse_location


class Collector:
    def __init__(self, storage: Storage, spec: JobSpec, workspace: Workspace) -> None:
        self.storage = storage
        self.spec = spec
        self.workspace = workspace

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
        if self.spec.checkpoint is not None:
            checkpoints = merged_tree([hw.checkpoint_dir for hw in self.workspace.hosts], skipped)
            warnings += self._upload_files(checkpoints, parse_location(self.spec.checkpoint.uri))
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

"""Copies a host's synced directories (checkpoints, TensorBoard, debugger and profiler output;
spec §9 and §14) to their S3 locations while the job runs, as SageMaker does: a file created or
changed reaches its location once it has stopped changing (seen alike by two scans a second
apart, so a file still being written is not copied half-way), a file deleted is deleted there,
and the files are copied as they are (no archive). Objects that appear in S3 meanwhile are
left alone.

What each directory has copied (path → size and mtime) is kept in a state file beside the job's
trees, so the final flush after the containers end (``flush_host``, called by the collect step,
here or on a node's agent) copies only what changed since the last round, and a process that
takes over copies nothing twice. Symbolic links are never followed and never copied.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from trainforge.errors import StorageError
from trainforge.runtime.jobspec import JobSpec, SyncedDirSpec
from trainforge.runtime.workspace import HostWorkspace, Workspace
from trainforge.storage.base import Storage
from trainforge.storage.location import Location, parse_location

log = logging.getLogger("trainforge.runtime")
SCAN_SECONDS = 1.0
Signature = tuple[int, int]  # size, mtime_ns


def scan(root: Path) -> dict[str, Signature]:
    """Every regular file under ``root`` (relative POSIX path → signature); links skipped."""
    found: dict[str, Signature] = {}
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            rel = prefix + entry.name
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    found[rel] = (info.st_size, info.st_mtime_ns)
            except OSError:
                continue
    return found


@dataclass
class DirSync:
    """One synced directory of one host."""

    synced: SyncedDirSpec
    local: Path
    state_path: Path
    storage: Storage

    @property
    def name(self) -> str:
        return f"sync-{self.synced.name}"

    @property
    def target(self) -> Location:
        return parse_location(self.synced.uri)

    def _load(self) -> dict[str, Signature]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {rel: (int(sig[0]), int(sig[1])) for rel, sig in data.items()}

    def _save(self, copied: dict[str, Signature]) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(copied), encoding="utf-8")
        os.replace(tmp, self.state_path)

    def round(
        self, copied: dict[str, Signature], ready: dict[str, Signature]
    ) -> tuple[int, list[str]]:
        """Copy the ``ready`` files that differ from what was copied, delete what is gone;
        updates ``copied``. Returns (files moved, errors)."""
        store = self.storage.store_for(self.target)
        moved = 0
        errors: list[str] = []
        for rel, sig in sorted(ready.items()):
            if copied.get(rel) == sig:
                continue
            try:
                store.upload_file(self.local / rel, self.target.child(rel))
            except FileNotFoundError:
                continue  # deleted since the scan: the next round deletes it there
            except (StorageError, OSError) as exc:
                errors.append(f"{rel}: {exc}")
                continue
            copied[rel] = sig
            moved += 1
        return moved, errors

    def _delete_gone(self, copied: dict[str, Signature], present: dict[str, Signature]) -> int:
        store = self.storage.store_for(self.target)
        gone = [rel for rel in copied if rel not in present]
        for rel in gone:
            try:
                store.delete(self.target.child(rel))
            except (StorageError, OSError):
                continue
            del copied[rel]
        return len(gone)

    def run(self, stopping: threading.Event) -> list[str]:
        """Copy changes every second until ``stopping``; the final flush is ``flush``'s."""
        copied = self._load()
        previous: dict[str, Signature] = {}
        warned = False
        while not stopping.wait(SCAN_SECONDS):
            current = scan(self.local)
            if not self.local.is_dir():
                # The tree is being removed (the job ended; its cleanup renames it away
                # first): what the scan missed is not deleted, and the collect step has
                # flushed already.
                continue
            ready = {rel: sig for rel, sig in current.items() if previous.get(rel) == sig}
            previous = current
            moved, errors = self.round(copied, ready)
            moved += self._delete_gone(copied, current)
            if moved:
                self._save(copied)
            if errors and not warned:
                warned = True
                log.warning("%s: copying to %s failed: %s", self.name, self.target, errors[0])
        return []

    def flush(self) -> list[str]:
        """The last round, after the container ended: everything that differs is copied."""
        copied = self._load()
        current = scan(self.local)
        _, errors = self.round(copied, current)
        self._delete_gone(copied, current)
        self._save(copied)
        if errors:
            return [
                f"Copying {self.synced.name} to {self.synced.uri} failed for "
                f"{len(errors)} file(s): {errors[0]}"
            ]
        return []


def host_syncs(
    spec: JobSpec, workspace: Workspace, hw: HostWorkspace, storage: Storage
) -> list[DirSync]:
    return [
        DirSync(
            synced,
            hw.synced_dir(synced),
            workspace.root / "sync" / f"{hw.host.name}.{synced.name}.json",
            storage,
        )
        for synced in spec.synced
    ]


def flush_host(
    spec: JobSpec, workspace: Workspace, hw: HostWorkspace, storage: Storage
) -> list[str]:
    """The final flush of every synced directory of ``hw``'s host."""
    warnings: list[str] = []
    for sync in host_syncs(spec, workspace, hw, storage):
        warnings += sync.flush()
    return warnings

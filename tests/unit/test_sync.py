"""The synced directories (runtime.sync) against a local target: a file is copied once it has
stopped changing, a deleted file is deleted there, links are never followed, and the final flush
copies only what changed since the last round (the state survives another process)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from trainforge.errors import StorageError
from trainforge.runtime.jobspec import SyncedDirSpec
from trainforge.runtime.sync import DirSync, scan
from trainforge.storage.base import Storage
from trainforge.storage.local import LocalStore


def _sync(tmp_path: Path) -> DirSync:
    local = tmp_path / "checkpoints"
    local.mkdir()
    synced = SyncedDirSpec("checkpoints", "/opt/ml/checkpoints", f"file://{tmp_path / 'target'}")

    def no_s3() -> LocalStore:
        raise AssertionError("S3 was not asked for")

    return DirSync(synced, local, tmp_path / "state.json", Storage(no_s3, LocalStore()))


def _target(tmp_path: Path) -> dict[str, str]:
    root = tmp_path / "target"
    return {k: (root / k).read_text() for k in scan(root)} if root.exists() else {}


def test_a_file_is_copied_once_two_scans_agree(tmp_path: Path) -> None:
    sync = _sync(tmp_path)
    (sync.local / "a").write_text("1")
    copied: dict[str, tuple[int, int]] = {}
    first = scan(sync.local)
    # What changed between two scans is not ready: only what both scans saw alike is.
    (sync.local / "a").write_text("12")
    os.utime(sync.local / "a", ns=(1, 1))
    second = scan(sync.local)
    ready = {k: v for k, v in second.items() if first.get(k) == v}
    assert sync.round(copied, ready) == (0, [])
    assert _target(tmp_path) == {}
    assert sync.round(copied, second) == (1, [])
    assert _target(tmp_path) == {"a": "12"}
    # Unchanged since it was copied: not copied again.
    assert sync.round(copied, scan(sync.local)) == (0, [])


def test_the_running_sync_copies_changes_and_deletions(tmp_path: Path) -> None:
    sync = _sync(tmp_path)
    (sync.local / "sub").mkdir()
    (sync.local / "sub" / "b").write_text("b")
    (sync.local / "old").write_text("old")
    os.symlink("/etc/passwd", sync.local / "link")
    stopping = threading.Event()
    thread = threading.Thread(target=sync.run, args=(stopping,), daemon=True)
    thread.start()
    try:
        _wait(lambda: _target(tmp_path) == {"sub/b": "b", "old": "old"})
        (sync.local / "old").unlink()
        (sync.local / "new").write_text("new")
        _wait(lambda: _target(tmp_path) == {"sub/b": "b", "new": "new"})
    finally:
        stopping.set()
        thread.join(10)
    assert not thread.is_alive()
    assert not (tmp_path / "target" / "link").exists()


def test_the_final_flush_copies_what_changed_since_the_last_round(tmp_path: Path) -> None:
    sync = _sync(tmp_path)
    (sync.local / "kept").write_text("kept")
    (sync.local / "gone").write_text("gone")
    assert sync.flush() == []
    assert _target(tmp_path) == {"kept": "kept", "gone": "gone"}
    # Another process (the collect step, an agent) carries on from the state file.
    again = _sync_again(tmp_path, sync)
    (sync.local / "gone").unlink()
    (sync.local / "late").write_text("late")
    (tmp_path / "target" / "kept").write_text("changed in S3 meanwhile")
    assert again.flush() == []
    # "kept" was copied already and did not change here: it is not copied again.
    assert _target(tmp_path) == {"kept": "changed in S3 meanwhile", "late": "late"}


def test_a_failing_copy_is_reported_and_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = _sync(tmp_path)
    (sync.local / "a").write_text("a")
    calls = []

    def broken(self: LocalStore, path: Path, dest: object) -> None:
        calls.append(path)
        raise StorageError("the endpoint is away")

    monkeypatch.setattr(LocalStore, "upload_file", broken)
    warnings = sync.flush()
    assert len(warnings) == 1 and "the endpoint is away" in warnings[0], warnings
    monkeypatch.undo()
    assert sync.flush() == []
    assert _target(tmp_path) == {"a": "a"} and len(calls) == 1


def _sync_again(tmp_path: Path, sync: DirSync) -> DirSync:
    return DirSync(sync.synced, sync.local, sync.state_path, sync.storage)


def _wait(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the condition never held")

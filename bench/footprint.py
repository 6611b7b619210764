"""Reported without a target: disk written per job besides its data and artifacts (the job
store and the job's workspace), measured over no-op jobs run through a server."""

from __future__ import annotations

import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import Row, busybox_image, noop_request, trainforge_server

JOBS = 20


def _disk(path: Path) -> int:
    """Blocks in use under ``path``, after folding SQLite's write-ahead log into the database
    (the log is reused, and its size at any moment says nothing about one job)."""
    with sqlite3.connect(path / "trainforge.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    total = 0
    for item in path.rglob("*"):
        if item.is_file() and not item.is_symlink():
            total += item.stat().st_blocks * 512
    return total


def footprint() -> list[Row]:
    image = busybox_image()
    with tempfile.TemporaryDirectory(prefix="tf-foot-") as tmp:
        home, out = Path(tmp) / "home", Path(tmp) / "out"
        home.mkdir()
        with trainforge_server(home) as server:
            sm = server.client("sagemaker")
            warm = f"warm-{uuid.uuid4().hex[:6]}"
            sm.create_training_job(**noop_request(warm, image, out))
            while (
                sm.describe_training_job(TrainingJobName=warm)["TrainingJobStatus"] != "Completed"
            ):
                time.sleep(0.05)
            before = _disk(home)
            for _ in range(JOBS):
                name = f"foot-{uuid.uuid4().hex[:8]}"
                sm.create_training_job(**noop_request(name, image, out))
                while (
                    sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
                    != "Completed"
                ):
                    time.sleep(0.05)
            after = _disk(home)
    per_job = (after - before) / JOBS
    return [
        Row(
            "m3",
            "disk written per job besides data and artifacts (store + workspace)",
            f"{per_job / 1024:.0f} KiB",
            "—",
            "—",
            "report only",
            None,
            [f"over {JOBS} no-op jobs; the write-ahead log checkpointed before each reading"],
        )
    ]

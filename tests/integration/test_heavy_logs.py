"""Issue 7, point 1: every line a container writes reaches the store, on a Docker daemon that
rotates json-file logs as this machine's does (``max-size=10m, max-file=3`` in its daemon.json):
a million lines in a burst, and one 10 MiB line. The daemon is one of the tests' own, so the
test does not depend on how the machine's daemon happens to be configured."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dockerd import PrivateDaemon, private_daemon
from tests.support import run_job, script_job

pytestmark = pytest.mark.docker

ROTATING = {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}


@pytest.fixture(scope="module")
def rotating_daemon(images: dict[str, str]) -> Iterator[PrivateDaemon]:
    with private_daemon([images["busybox"]], **ROTATING) as daemon:
        yield daemon


def stored_messages(home: Path, job: str) -> list[str]:
    with sqlite3.connect(home / "trainforge.db") as db:
        rows = db.execute(
            "SELECT e.message FROM log_events e JOIN log_streams s ON s.id = e.stream_id"
            " WHERE s.name LIKE ? ORDER BY e.id",
            (f"{job}/%",),
        ).fetchall()
    return [r[0] for r in rows]


def test_a_million_lines_all_reach_the_store(
    images: dict[str, str], home: Path, rotating_daemon: PrivateDaemon
) -> None:
    request = script_job(images["busybox"], home, "seq 1 1000000\necho done\n")
    result = run_job(home, request, timeout=300, DOCKER_HOST=rotating_daemon.url)
    assert result.status == "Completed", result.stderr[-2000:]
    messages = stored_messages(home, str(request["TrainingJobName"]))
    assert len(messages) == 1_000_001
    assert messages == [str(i) for i in range(1, 1_000_001)] + ["done"]


def test_a_10_mib_line_arrives_whole(
    images: dict[str, str], home: Path, rotating_daemon: PrivateDaemon
) -> None:
    script = "head -c 10485760 /dev/zero | tr '\\0' x\necho\necho after\n"
    request = script_job(images["busybox"], home, script)
    result = run_job(home, request, timeout=300, DOCKER_HOST=rotating_daemon.url)
    assert result.status == "Completed", result.stderr[-2000:]
    messages = stored_messages(home, str(request["TrainingJobName"]))
    # CloudWatch keeps at most 256 KiB - 26 bytes per event: the line is cut, never shortened.
    assert messages[-1] == "after"
    assert all(len(m) <= 256 * 1024 - 26 for m in messages)
    assert "".join(messages[:-1]) == "x" * 10_485_760

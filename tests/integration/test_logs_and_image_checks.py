"""Issue 2, points 9 and 10: every output line stored with its timestamp and streamed live, and
the image checks that warn in the job's log before launch."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import (
    job_request,
    log_messages,
    run_job,
    script_job,
    start_trainforge,
    trainforge,
    write_request,
)

pytestmark = pytest.mark.docker


def _events(home: Path, name: str) -> list[tuple[str, int, str]]:
    with sqlite3.connect(home / "trainforge.db") as conn:
        return list(
            conn.execute(
                "SELECT s.name, e.timestamp, e.message FROM log_events e JOIN log_streams s"
                " ON s.id = e.stream_id WHERE s.name LIKE ? ORDER BY e.id",
                (name + "/%",),
            )
        )


def test_every_line_is_stored_with_its_timestamp(images: dict[str, str], home: Path) -> None:
    script = (
        "echo 'to stdout'\n"
        "echo 'to stderr' >&2\n"
        "printf 'epoch=1\\tloss=0.5\\n'\n"
        "head -c 40000 /dev/zero | tr '\\0' 'a'; echo\n"
        "printf 'no newline at the end'\n"
    )
    request = script_job(images["busybox"], home, script)
    name = request["TrainingJobName"]
    started = time.time() * 1000
    result = run_job(home, request)
    assert result.status == "Completed", result.stderr
    events = _events(home, name)
    streams = {stream for stream, _, _ in events}
    assert len(streams) == 1
    (stream,) = streams
    # Stream name as SageMaker names it: <job>/algo-<i>-<epoch seconds at container start>.
    prefix, _, epoch = stream.rpartition("-")
    assert prefix == f"{name}/algo-1"
    assert abs(int(epoch) * 1000 - started) < 60_000
    messages = [m for _, _, m in events]
    # stdout and stderr are separate pipes: their relative order is not defined.
    assert "to stderr" in messages
    messages.remove("to stderr")
    assert messages == [
        "to stdout",
        "epoch=1#011loss=0.5",  # tabs as SageMaker's log collection writes them
        "a" * 40000,  # Docker splits long lines at 16 KiB; they are joined again
        "no newline at the end",
    ]
    assert all(started - 5000 <= ts <= time.time() * 1000 for _, ts, _ in events)
    # The terminal saw the raw lines as they came.
    assert "epoch=1\tloss=0.5" in result.stderr


def test_output_is_streamed_live_and_logs_follow(images: dict[str, str], home: Path) -> None:
    script = "echo first\nsleep 4\necho second\n"
    request = script_job(images["busybox"], home, script)
    name = request["TrainingJobName"]
    path = write_request(home, request)
    run = start_trainforge(home, "run", "--cli-input-json", f"file://{path}")
    follower: subprocess.Popen[str] | None = None
    try:
        assert run.stderr is not None
        line = ""
        deadline = time.monotonic() + 60
        while "first" not in line and time.monotonic() < deadline:
            line = run.stderr.readline()
        assert line.strip() == "first"
        # The job is still running: the line arrived live, not at the end.
        describe = json.loads(trainforge(home, "describe", name).stdout)
        assert describe["TrainingJobStatus"] == "InProgress"
        assert "first" in log_messages(home, name)
        follower = start_trainforge(home, "logs", name, "-f")
        out, _ = follower.communicate(timeout=60)
        assert out.splitlines() == ["first", "second"]
    finally:
        run.communicate(timeout=60)
        if follower is not None and follower.poll() is None:
            follower.kill()


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("shell-form", "The image's ENTRYPOINT is in shell form"),
        ("tini-entry", "The image's ENTRYPOINT is tini"),
        ("opt-ml-content", "The image ships content under /opt/ml (code"),
        ("busybox", "The image has no ENTRYPOINT and no executable named 'train' on its PATH"),
    ],
)
def test_image_checks_warn_in_the_job_log(
    images: dict[str, str], home: Path, image: str, expected: str
) -> None:
    request = job_request(images[image], f"file://{home / 'out'}")
    result = run_job(home, request)
    warnings = [m for m in log_messages(home, request["TrainingJobName"]) if "WARNING" in m]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("[trainforge] WARNING: " + expected), warnings
    assert expected in result.stderr


def test_a_clean_image_gets_no_warning(images: dict[str, str], home: Path) -> None:
    request = job_request(images["argv"], f"file://{home / 'out'}")
    result = run_job(home, request)
    assert result.status == "Completed"
    assert not [m for m in log_messages(home, request["TrainingJobName"]) if "WARNING" in m]

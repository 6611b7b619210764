"""Issue 3, point 5 (and issue 2's "a job record is never lost"): the server is killed with
SIGKILL while jobs run and is started again. Every accepted job is still there; containers still
running are taken up again (logs, stop, upload); a job whose container finished meanwhile is
collected; one whose container is gone fails with a reason that says so; queued jobs run; no job
runs twice. A `trainforge run` killed the same way is taken over by the next server."""

from __future__ import annotations

import io
import signal
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.server_support import start_server, wait_for_job
from tests.support import code_channel, job_request, start_trainforge, write_request

pytestmark = pytest.mark.docker


def _messages(logs: Any, name: str) -> list[str]:
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=name + "/"
    )["logStreams"]
    out: list[str] = []
    for stream in streams:
        token = None
        while True:
            kwargs = {"nextToken": token} if token else {}
            page = logs.get_log_events(
                logGroupName="/aws/sagemaker/TrainingJobs",
                logStreamName=stream["logStreamName"],
                startFromHead=True,
                **kwargs,
            )
            out += [e["message"] for e in page["events"]]
            if page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
    return out


def _script_job(image: str, tmp_path: Path, label: str, script: str) -> dict[str, Any]:
    return job_request(
        image,
        f"file://{tmp_path}/out",
        name=f"{label}-{int(time.time() * 1000) % 10**8}",
        channels=[code_channel(tmp_path / f"code-{label}", script)],
        entrypoint=["/bin/sh"],
        arguments=["/opt/ml/input/data/code/train.sh"],
    )


def _wait_for_line(logs: Any, name: str, line: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if line in _messages(logs, name):
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{name} never printed {line}")


def _model(tmp_path: Path, name: str) -> dict[str, bytes]:
    data = (tmp_path / "out" / name / "output" / "model.tar.gz").read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_kill_9_of_the_server_with_jobs_running(
    images: dict[str, str], home: Path, tmp_path: Path
) -> None:
    env = {
        "TRAINFORGE_CAPACITY_CPUS": "8",  # four ml.m5.large at once; a fifth waits
        "TRAINFORGE_CAPACITY_MEMORY_MIB": str(64 * 1024),
        "TRAINFORGE_STOP_GRACE_SECONDS": "2",
    }
    server = start_server(home, **env)
    sm, logs = server.client("sagemaker"), server.client("logs")
    image = images["busybox"]
    jobs = {
        "long": _script_job(
            image,
            tmp_path,
            "long",
            "echo started\nsleep 10\necho finished\necho long > /opt/ml/model/long.txt\n",
        ),
        "quick": _script_job(
            image,
            tmp_path,
            "quick",
            "echo started\nsleep 2\necho done-while-down\necho quick > /opt/ml/model/quick.txt\n",
        ),
        "gone": _script_job(image, tmp_path, "gone", "echo started\nsleep 60\n"),
        "stopping": _script_job(
            image,
            tmp_path,
            "stopping",
            "trap 'echo terminated; echo saved > /opt/ml/model/saved.txt; exit 0' TERM\necho started\nwhile true; do sleep 0.1; done\n",
        ),
        "queued": _script_job(
            image, tmp_path, "queued", "echo started\necho queued > /opt/ml/model/queued.txt\n"
        ),
    }
    for request in jobs.values():
        sm.create_training_job(**request)
    names = {label: str(r["TrainingJobName"]) for label, r in jobs.items()}
    for label in ("long", "quick", "gone", "stopping"):
        _wait_for_line(logs, names[label], "started")
    assert sm.describe_training_job(TrainingJobName=names["queued"])["SecondaryStatus"] == "Pending"
    sm.stop_training_job(TrainingJobName=names["stopping"])
    quick_start = sm.describe_training_job(TrainingJobName=names["quick"])["TrainingStartTime"]

    server.stop(signal.SIGKILL)
    # While no server runs: one container finishes, another disappears.
    time.sleep(4)
    gone = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=trainforge.job={names['gone']}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert len(gone) == 1
    subprocess.run(["docker", "rm", "-f", *gone], check=True, capture_output=True)

    server.start()
    try:
        results = {label: wait_for_job(sm, name, timeout=120) for label, name in names.items()}
        assert {label: d["TrainingJobStatus"] for label, d in results.items()} == {
            "long": "Completed",
            "quick": "Completed",
            "gone": "Failed",
            "stopping": "Stopped",
            "queued": "Completed",
        }
        assert "containers are gone" in results["gone"]["FailureReason"]
        assert results["gone"]["FailureReason"].startswith("InternalServerError: ")
        assert _messages(logs, names["long"]) == ["started", "finished"]
        assert _messages(logs, names["quick"]) == ["started", "done-while-down"]
        assert _messages(logs, names["queued"]) == ["started"]
        assert "terminated" in _messages(logs, names["stopping"])
        assert results["quick"]["TrainingStartTime"] == quick_start
        assert _model(tmp_path, names["long"]) == {"long.txt": b"long\n"}
        assert _model(tmp_path, names["quick"]) == {"quick.txt": b"quick\n"}
        assert _model(tmp_path, names["stopping"]) == {"saved.txt": b"saved\n"}
        # Nothing stays InProgress, and nothing is left running.
        listed = sm.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]
        assert listed == []
    finally:
        server.stop()


def test_a_killed_trainforge_run_is_taken_over_by_the_server(
    images: dict[str, str], home: Path, tmp_path: Path
) -> None:
    request = _script_job(
        images["busybox"],
        tmp_path,
        "orphan",
        "echo started\nsleep 4\necho finished\necho m > /opt/ml/model/m.txt\n",
    )
    path = write_request(home, request)
    run = start_trainforge(home, "run", "--cli-input-json", f"file://{path}")
    assert run.stderr is not None
    line = ""
    while "started" not in line:
        line = run.stderr.readline()
        assert line, "trainforge run ended early"
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=30)
    with start_server(home) as server:
        sm, logs = server.client("sagemaker"), server.client("logs")
        described = wait_for_job(sm, request["TrainingJobName"], timeout=60)
        assert described["TrainingJobStatus"] == "Completed"
        assert _messages(logs, request["TrainingJobName"]) == ["started", "finished"]
        assert _model(tmp_path, request["TrainingJobName"]) == {"m.txt": b"m\n"}

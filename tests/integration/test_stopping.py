"""Issue 2, point 8: `trainforge stop` from another terminal, Ctrl-C on `trainforge run`, and
MaxRuntimeInSeconds: SIGTERM to PID 1, the grace period, SIGKILL, artifacts written during the
grace period uploaded, final status Stopped with the right secondary status."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.support import (
    log_messages,
    run_job,
    script_job,
    start_trainforge,
    trainforge,
    write_request,
)

pytestmark = pytest.mark.docker

SAVES_ON_TERM = (
    "trap 'echo \"got SIGTERM\"; echo saved-in-grace > /opt/ml/model/saved.txt; exit 0' TERM\n"
    "echo ready\n"
    "while true; do sleep 0.1; done\n"
)
IGNORES_TERM = (
    "trap 'echo \"ignoring SIGTERM\"' TERM\n"
    "echo partial > /opt/ml/model/partial.txt\n"
    "echo ready\n"
    "while true; do sleep 0.1; done\n"
)


def _wait_for_status(home: Path, name: str, wanted: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = trainforge(home, "describe", name)
        if proc.returncode == 0:
            describe = json.loads(proc.stdout)
            if describe["SecondaryStatus"] == wanted:
                return dict(describe)
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached {wanted}")


def _wait_for_line(
    home: Path,
    name: str,
    line: str,
    run: subprocess.Popen[str] | None = None,
    timeout: float = 60,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (run is None or run.poll() is None):
        if line in trainforge(home, "logs", name).stdout.splitlines():
            return
        time.sleep(0.2)
    said = ""
    if run is not None:
        if run.poll() is None:
            run.kill()
        _, said = run.communicate(timeout=30)
    raise AssertionError(f"{name} never printed {line!r}; trainforge run said:\n{said}")


def _start(home: Path, request: dict[str, object], **env: str) -> subprocess.Popen[str]:
    path = write_request(home, request)
    return start_trainforge(home, "run", "--cli-input-json", f"file://{path}", **env)


def _model(home: Path, name: str) -> dict[str, bytes]:
    archive = home / "output" / name / "output" / "model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(archive.read_bytes()), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_stop_from_another_terminal_uploads_what_the_grace_period_wrote(
    images: dict[str, str], home: Path
) -> None:
    request = script_job(images["busybox"], home, SAVES_ON_TERM)
    name = str(request["TrainingJobName"])
    run = _start(home, request)
    _wait_for_line(home, name, "ready", run)
    stop = trainforge(home, "stop", name)
    assert stop.returncode == 0, stop.stderr
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 3, stderr
    describe = json.loads(stdout)
    assert (describe["TrainingJobStatus"], describe["SecondaryStatus"]) == ("Stopped", "Stopped")
    statuses = [(t["Status"], t["StatusMessage"]) for t in describe["SecondaryStatusTransitions"]]
    assert statuses[-2:] == [
        ("Stopping", "Stopping the training job"),
        ("Stopped", "Training job stopped"),
    ]
    assert "got SIGTERM" in log_messages(home, name)
    assert _model(home, name) == {"saved.txt": b"saved-in-grace\n"}
    # A stopped job cannot be stopped again, with SageMaker's words.
    again = trainforge(home, "stop", name)
    assert again.returncode == 254
    assert (
        "An error occurred (ValidationException) when calling the StopTrainingJob operation: "
        "The request was rejected because the training job is in status Stopped."
    ) in again.stderr


def test_sigkill_after_the_grace_period(images: dict[str, str], home: Path) -> None:
    request = script_job(images["busybox"], home, IGNORES_TERM)
    name = str(request["TrainingJobName"])
    run = _start(home, request, TRAINFORGE_STOP_GRACE_SECONDS="2")
    _wait_for_line(home, name, "ready", run)
    stopped_at = time.monotonic()
    assert trainforge(home, "stop", name).returncode == 0
    stdout, _ = run.communicate(timeout=60)
    elapsed = time.monotonic() - stopped_at
    describe = json.loads(stdout)
    assert describe["SecondaryStatus"] == "Stopped"
    assert "ignoring SIGTERM" in log_messages(home, name)
    # The container outlived SIGTERM: only SIGKILL, after the grace period, ended it.
    assert elapsed >= 2
    assert _model(home, name) == {"partial.txt": b"partial\n"}


def test_ctrl_c_on_run_stops_the_job(images: dict[str, str], home: Path) -> None:
    request = script_job(images["busybox"], home, SAVES_ON_TERM)
    name = str(request["TrainingJobName"])
    run = _start(home, request)
    _wait_for_line(home, name, "ready", run)
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 3, stderr
    assert json.loads(stdout)["SecondaryStatus"] == "Stopped"
    assert "Press Ctrl-C again" in stderr
    assert _model(home, name) == {"saved.txt": b"saved-in-grace\n"}


def test_max_runtime_stops_the_job_and_keeps_its_artifacts(
    images: dict[str, str], home: Path
) -> None:
    request = script_job(
        images["busybox"], home, SAVES_ON_TERM, StoppingCondition={"MaxRuntimeInSeconds": 2}
    )
    result = run_job(home, request)
    assert result.returncode == 3, result.stderr
    d = result.describe
    assert (d["TrainingJobStatus"], d["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert d["SecondaryStatusTransitions"][-1]["StatusMessage"] == (
        "Training job runtime exceeded MaxRuntimeInSeconds provided"
    )
    assert d["TrainingTimeInSeconds"] >= 2
    assert _model(home, str(request["TrainingJobName"])) == {"saved.txt": b"saved-in-grace\n"}

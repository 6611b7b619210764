"""Issue 7, point 8 and the fault suite, with real containers: a job already stopping when the
server is killed keeps its SIGKILL deadline (the grace period counts from the SIGTERM, not from
the takeover), and a Docker daemon restarted mid-job (a daemon of the tests' own) leaves no job
stuck InProgress: each ends with a reason that says what happened."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.dockerd import PrivateDaemon, private_daemon
from tests.server_support import start_server, wait_for_job
from tests.support import code_channel, job_request

pytestmark = pytest.mark.docker

GROUP = "/aws/sagemaker/TrainingJobs"


def _request(image: str, tmp_path: Path, script: str, **extra: Any) -> dict[str, Any]:
    code = code_channel(tmp_path / f"code-{uuid.uuid4().hex[:6]}", script)
    return job_request(
        image,
        f"file://{tmp_path}/out",
        channels=[code],
        entrypoint=["/bin/sh"],
        arguments=["/opt/ml/input/data/code/train.sh"],
        **extra,
    )


def _events(logs: Any, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for stream in logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=name + "/")[
        "logStreams"
    ]:
        token = None
        while True:
            page = logs.get_log_events(
                logGroupName=GROUP,
                logStreamName=stream["logStreamName"],
                startFromHead=True,
                **({"nextToken": token} if token else {}),
            )
            found += page["events"]
            if page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
    return found


def _wait_for_message(logs: Any, name: str, text: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            events = _events(logs, name)
        except ClientError:  # no stream yet
            events = []
        for event in events:
            if event["message"] == text:
                return event
        time.sleep(0.1)
    raise AssertionError(f"{name} never printed {text!r}")


# Ignores SIGTERM (saying when it got it) and beats every 0.1 s until SIGKILL ends it.
STUBBORN = "trap 'echo got-sigterm' TERM\necho ready\nwhile true; do echo beat; sleep 0.1; done\n"


def test_the_sigkill_deadline_survives_a_server_restart(
    images: dict[str, str], home: Path, tmp_path: Path
) -> None:
    grace = 10.0
    server = start_server(home, TRAINFORGE_STOP_GRACE_SECONDS=str(grace))
    with server:
        sm, logs = server.client("sagemaker"), server.client("logs")
        request = _request(images["busybox"], tmp_path, STUBBORN)
        name = request["TrainingJobName"]
        sm.create_training_job(**request)
        _wait_for_message(logs, name, "ready")
        sm.stop_training_job(TrainingJobName=name)
        term = _wait_for_message(logs, name, "got-sigterm")["timestamp"] / 1000
        time.sleep(2)
        server.stop(signal.SIGKILL)
        server.start()
        restarted = time.time()
        sm, logs = server.client("sagemaker"), server.client("logs")
        done = wait_for_job(sm, name, timeout=60)
        assert done["SecondaryStatus"] == "Stopped"
        last_beat = max(e["timestamp"] for e in _events(logs, name) if e["message"] == "beat")
        killed = last_beat / 1000
        # SIGKILL came a grace period after the SIGTERM; a grace period restarted by the
        # takeover would have let it beat until at least restart + grace.
        assert killed >= term + grace - 1.0
        assert killed < restarted + grace - 2.0


@pytest.fixture
def daemon(images: dict[str, str]) -> Iterator[PrivateDaemon]:
    with private_daemon([images["busybox"]]) as started:
        yield started


def test_a_daemon_restart_mid_job_leaves_no_job_in_progress(
    images: dict[str, str], home: Path, tmp_path: Path, daemon: PrivateDaemon
) -> None:
    server = start_server(home, DOCKER_HOST=daemon.url, TRAINFORGE_ENGINE_OUTAGE_SECONDS="30")
    with server:
        sm, logs = server.client("sagemaker"), server.client("logs")
        running = [
            _request(images["busybox"], tmp_path, "echo ready\nwhile true; do sleep 0.1; done\n")
            for _ in range(2)
        ]
        for request in running:
            sm.create_training_job(**request)
        for request in running:
            _wait_for_message(logs, request["TrainingJobName"], "ready")
        daemon.restart()
        for request in running:
            done = wait_for_job(sm, request["TrainingJobName"], timeout=90)
            assert done["TrainingJobStatus"] == "Failed"
            # Whichever the server saw first, the engine's absence or the exit it caused, the
            # reason says the engine ended the host, not the algorithm.
            reason = done["FailureReason"]
            assert reason.startswith("InternalServerError: "), reason
            assert (
                "The container engine went away while the job ran, and algo-1 ended" in reason
                or f"by Docker at {daemon.url} restarting or by someone stopping it" in reason
            ), reason
        # The engine is back: the next job runs as usual.
        after = _request(images["busybox"], tmp_path, "echo fine\n")
        sm.create_training_job(**after)
        assert wait_for_job(sm, after["TrainingJobName"])["TrainingJobStatus"] == "Completed"
    assert daemon.docker("ps", "-aq").split() == []

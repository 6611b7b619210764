"""``trainforge run``: create a training job from a CreateTrainingJob request and run it in the
foreground, without a server. The container's output streams to stderr as it comes; the
DescribeTrainingJob JSON of the finished job goes to stdout. Ctrl-C (or SIGTERM) stops the job
as StopTrainingJob does; a second Ctrl-C kills its containers at once.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from trainforge.cli.output import print_error, print_result
from trainforge.context import Context
from trainforge.domain.hosts import hosts_of
from trainforge.domain.records import TrainingJob
from trainforge.errors import EngineError, ServiceError, ValidationError
from trainforge.scheduler.control import StoreStopControl
from trainforge.scheduler.leases import owner_id
from trainforge.service.training_jobs import Claim, check_semantics

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_STOPPED = 3
# The AWS CLI's exit status for a request the service rejected.
EXIT_REJECTED = 254


def load_cli_input(value: str) -> dict[str, Any]:
    """``file://path`` or inline JSON, as ``aws ... --cli-input-json`` takes it."""
    text = value
    if value.startswith(("file://", "fileb://")):
        path = Path(value.split("://", 1)[1]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(f"Cannot read {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = f" (to read the file, write file://{value})" if Path(value).is_file() else ""
        raise ValidationError(f"--cli-input-json is not valid JSON: {exc}{hint}") from exc
    if not isinstance(data, dict):
        raise ValidationError(
            "--cli-input-json must be a JSON object (a CreateTrainingJob request)."
        )
    return data


class _Console:
    """Prints container lines (and trainforge's own notes) to stderr, whole lines at a time."""

    def __init__(self, multi_host: bool) -> None:
        self.multi_host = multi_host
        self._lock = threading.Lock()

    def __call__(self, host: str, lines: Sequence[str]) -> None:
        if self.multi_host and host != "trainforge":
            text = "".join(f"{host} | {line}\n" for line in lines)
        else:
            text = "".join(f"{line}\n" for line in lines)
        with self._lock:
            sys.stderr.write(text)
            sys.stderr.flush()


def exit_status(job: TrainingJob) -> int:
    if job.status.value == "Completed":
        return EXIT_COMPLETED
    if job.status.value == "Stopped":
        return EXIT_STOPPED
    return EXIT_FAILED


def run_command(context: Context, cli_input: str, name_override: str | None) -> int:
    try:
        request = load_cli_input(cli_input)
        if name_override:
            request["TrainingJobName"] = name_override
        context.dispatcher.validate("sagemaker", "CreateTrainingJob", request)
        owner = owner_id("run")
        check_semantics(request)
        claim = Claim(owner, context.settings.lease_seconds)
        context.service.create_training_job(request, claim=claim)
    except ServiceError as exc:
        print_error("CreateTrainingJob", exc)
        return EXIT_REJECTED
    name = request["TrainingJobName"]
    lifecycle = context.lifecycle(owner)
    lifecycle.hold(name)
    control = StoreStopControl(context.jobs, name)
    console = _Console(multi_host=len(hosts_of(request)) > 1)
    console("trainforge", [f"[trainforge] Training job {name} created."])
    finished: list[TrainingJob] = []
    done = threading.Event()

    def work() -> None:
        try:
            allocation = lifecycle.wait_for_allocation(name, control)
            finished.append(lifecycle.execute(name, allocation, control, echo=console))
        finally:
            done.set()

    # Ctrl-C and SIGTERM only count here; the loop below acts on them. (An exception raised
    # into Thread.join can leave the thread looking finished while it still runs.)
    interrupts: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        interrupts.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    handled = 0
    thread = threading.Thread(target=work, name=f"job-{name}", daemon=True)
    try:
        thread.start()
        while not done.wait(0.2):
            if len(interrupts) > handled:
                handled = len(interrupts)
                if handled == 1:
                    _request_stop(context, name, control, console)
                else:
                    _kill_now(context, name, console)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        lifecycle.close()
    job = finished[0] if finished else context.jobs.get(name)
    assert job is not None
    detail = "" if job.secondary_status.value == job.status.value else f" ({job.secondary_status})"
    console("trainforge", [f"[trainforge] Training job {name}: {job.status}{detail}."])
    if job.failure_reason and job.status.value == "Failed":
        console("trainforge", [f"[trainforge] FailureReason: {job.failure_reason}"])
    print_result(
        "sagemaker",
        "DescribeTrainingJob",
        context.service.describe_training_job({"TrainingJobName": name}),
    )
    return exit_status(job)


def _request_stop(
    context: Context, name: str, control: StoreStopControl, console: _Console
) -> None:
    grace = context.settings.stop_grace_seconds
    console(
        "trainforge",
        [
            f"[trainforge] Stopping {name}: SIGTERM now, SIGKILL after {grace:g} s. "
            "Press Ctrl-C again to kill it at once."
        ],
    )
    # A ServiceError here means the job is already ending.
    with contextlib.suppress(ServiceError):
        context.service.stop_training_job({"TrainingJobName": name})
    control.request()


def _kill_now(context: Context, name: str, console: _Console) -> None:
    console("trainforge", [f"[trainforge] Killing the containers of {name}."])
    try:
        context.engine.kill(name)
    except EngineError as exc:
        console("trainforge", [f"[trainforge] {exc}"])

"""runtime.execute: container_invocation (the four cases of spec §4.1), and how a job ended."""

from __future__ import annotations

import signal
from typing import Any

from trainforge.engines.base import HostState, signal_of_exit_code
from trainforge.errors import Fault
from trainforge.runtime.execute import container_invocation, outcome_of
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.watch import WatchState


def spec(**algorithm: Any) -> JobSpec:
    return JobSpec.from_request(
        "job",
        "arn:aws:sagemaker:us-east-1:000000000000:training-job/job",
        "us-east-1",
        {
            "AlgorithmSpecification": {"TrainingImage": "img:1", **algorithm},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        },
    )


def test_neither_keeps_the_image_entrypoint_with_train() -> None:
    assert container_invocation(spec()) == (None, ("train",))


def test_entrypoint_only_has_no_arguments() -> None:
    assert container_invocation(spec(ContainerEntrypoint=["python", "/opt/t.py"])) == (
        ("python", "/opt/t.py"),
        (),
    )


def test_arguments_only_keep_the_image_entrypoint() -> None:
    assert container_invocation(spec(ContainerArguments=["--epochs", "3"])) == (
        None,
        ("--epochs", "3"),
    )


def test_both() -> None:
    assert container_invocation(
        spec(ContainerEntrypoint=["python", "t.py"], ContainerArguments=["--lr", "0.1"])
    ) == (("python", "t.py"), ("--lr", "0.1"))


def test_the_engine_says_which_signal_a_docker_exit_status_means() -> None:
    assert signal_of_exit_code(143) == signal.SIGTERM
    assert signal_of_exit_code(137) == signal.SIGKILL
    assert signal_of_exit_code(0) is None
    assert signal_of_exit_code(1) is None
    assert signal_of_exit_code(128) is None
    assert signal_of_exit_code(None) is None


def _ended(code: int, sig: int | None) -> dict[str, HostState]:
    return {
        "algo-1": HostState(
            "algo-1", "job/algo-1", running=False, exit_code=code, signal=sig, finished_at=100.0
        )
    }


def test_a_host_killed_by_a_signal_trainforge_did_not_send_is_the_platforms_fault() -> None:
    outcome = outcome_of(spec(), _ended(143, signal.SIGTERM), WatchState(), {})
    assert outcome.failure is not None
    assert outcome.failure.fault is Fault.PLATFORM
    assert "signal trainforge did not send (exit code 143)" in outcome.failure.reason


def test_the_same_exit_status_without_a_signal_is_the_algorithms() -> None:
    # An engine whose exit status is not a signal (no 128 + N convention) reports none.
    outcome = outcome_of(spec(), _ended(143, None), WatchState(), {})
    assert outcome.failure is not None
    assert outcome.failure.fault is Fault.ALGORITHM


def test_a_signal_after_trainforge_terminated_the_job_is_not_an_outside_one() -> None:
    outcome = outcome_of(spec(), _ended(137, signal.SIGKILL), WatchState(terminated_at=99.0), {})
    assert outcome.failure is not None
    assert outcome.failure.fault is Fault.ALGORITHM

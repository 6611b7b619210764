"""service.status: the state machine and how one transition changes a job record."""

from __future__ import annotations

import pytest

from trainforge.domain.records import TrainingJob, Transition
from trainforge.domain.status import (
    MESSAGES,
    PRIMARY_OF,
    SecondaryStatus,
    TrainingJobStatus,
    TransitionNotAllowed,
    billable_seconds,
    plan_transition,
    training_seconds,
)

S = SecondaryStatus
P = TrainingJobStatus


def new_job(now: float = 100.0) -> TrainingJob:
    return TrainingJob(
        name="job-1",
        arn="arn:aws:sagemaker:us-east-1:000000000000:training-job/job-1",
        request={},
        status=P.IN_PROGRESS,
        secondary_status=S.STARTING,
        creation_time=now,
        last_modified_time=now,
        transitions=[Transition(S.STARTING, now, None, MESSAGES["created"])],
    )


def walk(job: TrainingJob, *steps: tuple[SecondaryStatus, float]) -> TrainingJob:
    for status, when in steps:
        job = plan_transition(job, status, f"msg {status.value}", when)
    return job


def test_same_status_only_replaces_the_open_entrys_message() -> None:
    job = walk(new_job(), (S.DOWNLOADING, 110.0))
    moved = plan_transition(job, S.DOWNLOADING, MESSAGES["downloading_image"], 120.0)
    assert moved.transitions == [
        Transition(S.STARTING, 100.0, 110.0, MESSAGES["created"]),
        Transition(S.DOWNLOADING, 110.0, None, MESSAGES["downloading_image"]),
    ]
    assert moved.secondary_status is S.DOWNLOADING
    assert moved.status is P.IN_PROGRESS
    assert moved.training_start_time == 110.0
    assert moved.last_modified_time == 120.0


def test_same_status_starting_keeps_one_entry_and_no_training_start() -> None:
    moved = plan_transition(new_job(), S.STARTING, MESSAGES["preparing"], 105.0)
    assert moved.transitions == [Transition(S.STARTING, 100.0, None, MESSAGES["preparing"])]
    assert moved.training_start_time is None


def test_new_status_closes_the_open_entry_and_appends_one() -> None:
    moved = plan_transition(new_job(), S.DOWNLOADING, MESSAGES["downloading_data"], 110.25)
    assert moved.transitions == [
        Transition(S.STARTING, 100.0, 110.25, MESSAGES["created"]),
        Transition(S.DOWNLOADING, 110.25, None, MESSAGES["downloading_data"]),
    ]
    assert moved.last_modified_time == 110.25


def test_the_original_job_is_not_changed() -> None:
    job = new_job()
    plan_transition(job, S.DOWNLOADING, "x", 110.0)
    assert job.transitions == [Transition(S.STARTING, 100.0, None, MESSAGES["created"])]
    assert job.secondary_status is S.STARTING


def test_now_is_rounded_to_milliseconds() -> None:
    moved = plan_transition(new_job(), S.DOWNLOADING, "x", 110.123456)
    assert moved.transitions[0].end_time == 110.123
    assert moved.transitions[1].start_time == 110.123
    assert moved.training_start_time == 110.123
    assert moved.last_modified_time == 110.123


def test_full_successful_path_times() -> None:
    job = walk(
        new_job(),
        (S.DOWNLOADING, 110.0),
        (S.TRAINING, 120.0),
        (S.UPLOADING, 180.5),
        (S.COMPLETED, 190.0),
    )
    assert [(t.status, t.start_time, t.end_time) for t in job.transitions] == [
        (S.STARTING, 100.0, 110.0),
        (S.DOWNLOADING, 110.0, 120.0),
        (S.TRAINING, 120.0, 180.5),
        (S.UPLOADING, 180.5, 190.0),
        (S.COMPLETED, 190.0, 190.0),
    ]
    assert job.status is P.COMPLETED
    assert job.training_start_time == 110.0
    assert job.training_end_time == 190.0
    assert job.is_terminal
    assert training_seconds(job) == 80


def test_pending_then_starting_then_downloading_sets_training_start_once() -> None:
    job = walk(new_job(), (S.PENDING, 101.0), (S.STARTING, 150.0))
    assert job.training_start_time is None
    assert [t.status for t in job.transitions] == [S.STARTING, S.PENDING, S.STARTING]
    job = walk(job, (S.DOWNLOADING, 160.0))
    assert job.training_start_time == 160.0
    job = walk(job, (S.TRAINING, 170.0))
    assert job.training_start_time == 160.0


def test_starting_straight_to_training_sets_training_start() -> None:
    job = walk(new_job(), (S.TRAINING, 130.0))
    assert job.training_start_time == 130.0


@pytest.mark.parametrize("ending", [S.STOPPING, S.FAILED])
def test_ending_from_starting_does_not_set_training_start(ending: SecondaryStatus) -> None:
    job = walk(new_job(), (ending, 105.0))
    assert job.training_start_time is None


def test_terminal_entry_has_end_equal_to_start() -> None:
    job = walk(new_job(), (S.DOWNLOADING, 110.0), (S.STOPPING, 115.0), (S.STOPPED, 130.0))
    assert job.transitions[-1] == Transition(S.STOPPED, 130.0, 130.0, "msg Stopped")
    assert job.transitions[-2] == Transition(S.STOPPING, 115.0, 130.0, "msg Stopping")
    assert job.status is P.STOPPED
    assert job.training_end_time == 130.0


def test_max_runtime_exceeded_is_primary_stopped() -> None:
    job = walk(
        new_job(), (S.DOWNLOADING, 110.0), (S.STOPPING, 200.0), (S.MAX_RUNTIME_EXCEEDED, 210.0)
    )
    assert job.status is P.STOPPED
    assert job.secondary_status is S.MAX_RUNTIME_EXCEEDED
    assert job.training_end_time == 210.0
    assert job.transitions[-1].end_time == 210.0


def test_stopping_is_primary_stopping_and_not_terminal() -> None:
    job = walk(new_job(), (S.DOWNLOADING, 110.0), (S.STOPPING, 115.0))
    assert job.status is P.STOPPING
    assert job.training_end_time is None
    assert job.transitions[-1].end_time is None
    assert not job.is_terminal


def test_failure_reason_defaults_to_the_failed_message() -> None:
    job = plan_transition(new_job(), S.FAILED, MESSAGES["failed"], 105.0)
    assert job.failure_reason == "Training job failed"
    assert job.status is P.FAILED
    assert job.training_end_time == 105.0
    assert training_seconds(job) is None


def test_failure_reason_is_cut_at_1024_characters() -> None:
    reason = "AlgorithmError: " + "x" * 2000
    job = plan_transition(new_job(), S.FAILED, MESSAGES["failed"], 105.0, reason)
    assert job.failure_reason == reason[:1024]
    assert len(job.failure_reason) == 1024


def test_failure_reason_of_exactly_1024_is_kept() -> None:
    reason = "y" * 1024
    job = plan_transition(new_job(), S.FAILED, MESSAGES["failed"], 105.0, reason)
    assert job.failure_reason == reason


def test_failure_reason_ignored_for_other_statuses() -> None:
    job = plan_transition(new_job(), S.DOWNLOADING, "x", 105.0, "should not be kept")
    assert job.failure_reason is None


@pytest.mark.parametrize(
    ("path", "new"),
    [
        ((), S.COMPLETED),
        ((), S.UPLOADING),
        ((), S.STOPPED),
        (((S.PENDING, 101.0),), S.DOWNLOADING),
        (((S.DOWNLOADING, 110.0),), S.PENDING),
        (((S.DOWNLOADING, 110.0), (S.INTERRUPTED, 120.0)), S.TRAINING),
        ((), S.INTERRUPTED),
        (((S.STOPPING, 110.0),), S.INTERRUPTED),
        (((S.STOPPING, 110.0), (S.MAX_WAIT_TIME_EXCEEDED, 120.0)), S.STOPPED),
        (((S.DOWNLOADING, 110.0), (S.TRAINING, 120.0)), S.DOWNLOADING),
        (((S.DOWNLOADING, 110.0), (S.STOPPING, 120.0)), S.COMPLETED),
        (((S.DOWNLOADING, 110.0), (S.STOPPING, 120.0)), S.TRAINING),
        (((S.FAILED, 110.0),), S.STARTING),
        (((S.DOWNLOADING, 110.0), (S.UPLOADING, 120.0), (S.COMPLETED, 130.0)), S.FAILED),
        (((S.DOWNLOADING, 110.0), (S.UPLOADING, 120.0), (S.COMPLETED, 130.0)), S.STOPPING),
    ],
)
def test_disallowed_moves_raise(
    path: tuple[tuple[SecondaryStatus, float], ...], new: SecondaryStatus
) -> None:
    job = walk(new_job(), *path)
    with pytest.raises(TransitionNotAllowed) as info:
        plan_transition(job, new, "x", 500.0)
    assert info.value.current is job.secondary_status
    assert info.value.new is new
    assert str(info.value) == (
        f"training job job-1: {job.secondary_status.value} -> {new.value} is not an allowed "
        "transition"
    )


def test_stopping_may_still_fail() -> None:
    job = walk(new_job(), (S.DOWNLOADING, 110.0), (S.STOPPING, 120.0))
    failed = plan_transition(job, S.FAILED, "x", 125.0, "InternalServerError: boom")
    assert failed.status is P.FAILED
    assert failed.failure_reason == "InternalServerError: boom"


def test_primary_of_every_terminal_secondary() -> None:
    assert PRIMARY_OF[S.COMPLETED] is P.COMPLETED
    assert PRIMARY_OF[S.FAILED] is P.FAILED
    assert PRIMARY_OF[S.STOPPED] is P.STOPPED
    assert PRIMARY_OF[S.MAX_RUNTIME_EXCEEDED] is P.STOPPED
    assert PRIMARY_OF[S.PENDING] is P.IN_PROGRESS


def test_repeating_a_terminal_status_keeps_training_end_time() -> None:
    job = walk(new_job(), (S.DOWNLOADING, 110.0), (S.UPLOADING, 120.0), (S.COMPLETED, 130.0))
    again = plan_transition(job, S.COMPLETED, MESSAGES["completed"], 500.0)
    assert again.training_end_time == again.transitions[-1].start_time == 130.0


def test_training_seconds() -> None:
    base = new_job()
    assert training_seconds(base) is None
    only_start = TrainingJob(**{**base.__dict__, "training_start_time": 100.0})
    assert training_seconds(only_start) is None

    def seconds(start: float, end: float) -> int | None:
        return training_seconds(
            TrainingJob(**{**base.__dict__, "training_start_time": start, "training_end_time": end})
        )

    assert seconds(100.0, 100.0) == 1
    assert seconds(100.0, 100.999) == 1
    assert seconds(100.0, 101.999) == 1
    assert seconds(100.0, 102.0) == 2
    assert seconds(100.5, 165.4) == 64
    assert seconds(100.0, 3700.0) == 3600


def test_a_spot_restart_keeps_the_training_start_and_bills_only_the_running_time() -> None:
    job = walk(
        new_job(),
        (S.DOWNLOADING, 110.0),
        (S.TRAINING, 120.0),
        (S.INTERRUPTED, 150.0),
        (S.STARTING, 170.0),
        (S.DOWNLOADING, 175.0),
        (S.TRAINING, 180.0),
        (S.UPLOADING, 200.0),
        (S.COMPLETED, 205.5),
    )
    assert [t.status for t in job.transitions] == [
        S.STARTING,
        S.DOWNLOADING,
        S.TRAINING,
        S.INTERRUPTED,
        S.STARTING,
        S.DOWNLOADING,
        S.TRAINING,
        S.UPLOADING,
        S.COMPLETED,
    ]
    assert job.training_start_time == 110.0
    assert training_seconds(job) == 95
    # 95.5 s from the first start to the end, less 20 s interrupted and 5 s starting again.
    assert billable_seconds(job) == 70


def test_billable_time_equals_training_time_for_a_job_that_ran_in_one_go() -> None:
    job = walk(new_job(), (S.DOWNLOADING, 110.0), (S.TRAINING, 120.0), (S.UPLOADING, 140.2))
    assert billable_seconds(job) is None
    job = walk(job, (S.COMPLETED, 141.9))
    assert billable_seconds(job) == training_seconds(job) == 31


def test_max_wait_time_exceeded_is_a_stopped_job() -> None:
    job = walk(new_job(), (S.DOWNLOADING, 110.0), (S.INTERRUPTED, 120.0), (S.STOPPING, 130.0))
    ended = plan_transition(job, S.MAX_WAIT_TIME_EXCEEDED, MESSAGES["max_wait"], 131.0)
    assert ended.status is P.STOPPED
    assert ended.training_end_time == 131.0
    assert ended.transitions[-1] == Transition(
        S.MAX_WAIT_TIME_EXCEEDED, 131.0, 131.0, MESSAGES["max_wait"]
    )


@pytest.mark.parametrize("ran", [S.DOWNLOADING, S.TRAINING, S.UPLOADING])
def test_a_retry_returns_to_starting(ran: SecondaryStatus) -> None:
    path = {
        S.DOWNLOADING: ((S.DOWNLOADING, 110.0),),
        S.TRAINING: ((S.DOWNLOADING, 110.0), (S.TRAINING, 115.0)),
        S.UPLOADING: ((S.DOWNLOADING, 110.0), (S.UPLOADING, 115.0)),
    }[ran]
    job = walk(new_job(), *path)
    retried = plan_transition(job, S.STARTING, "retry", 120.0)
    assert retried.status is P.IN_PROGRESS
    assert retried.training_start_time == 110.0
    assert [t.status for t in retried.transitions][-2:] == [ran, S.STARTING]

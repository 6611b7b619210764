"""store.logs: LogStore on a real SQLite file (streams, events, the container log cursor)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainforge.domain.records import HostRef, QueueState, Schedule, TrainingJob, Transition
from trainforge.domain.status import SecondaryStatus, TrainingJobStatus
from trainforge.store.db import Database
from trainforge.store.jobs import JobStore
from trainforge.store.logs import EventRow, LogStore, StreamRow

GROUP = "/aws/sagemaker/TrainingJobs"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "trainforge.db")
    yield database
    database.close()


@pytest.fixture
def logs(db: Database) -> LogStore:
    return LogStore(db)


def add_job_with_container(db: Database, job: str, host: str) -> JobStore:
    jobs = JobStore(db)
    jobs.insert(
        TrainingJob(
            name=job,
            arn=f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{job}",
            request={},
            status=TrainingJobStatus.IN_PROGRESS,
            secondary_status=SecondaryStatus.STARTING,
            creation_time=1.0,
            last_modified_time=1.0,
            transitions=[Transition(SecondaryStatus.STARTING, 1.0, None, "x")],
        ),
        Schedule(job, QueueState.QUEUED, None, None, 0),
    )
    jobs.save_host(HostRef(job, host, f"{job}/{host}-1", 0))
    return jobs


def test_create_stream_is_idempotent(logs: LogStore) -> None:
    first = logs.create_stream(GROUP, "job/algo-1-100", 100_000)
    again = logs.create_stream(GROUP, "job/algo-1-100", 999_999)
    other = logs.create_stream(GROUP, "job/algo-2-100", 100_000)
    elsewhere = logs.create_stream("/other", "job/algo-1-100", 5)
    assert first == again
    assert len({first, other, elsewhere}) == 3
    assert logs.stream(GROUP, "job/algo-1-100") == StreamRow(
        first, GROUP, "job/algo-1-100", 100_000, None, None, None, 0
    )
    assert logs.stream(GROUP, "missing") is None
    assert logs.group_exists(GROUP)
    assert not logs.group_exists("/nope")


def test_append_updates_first_last_and_stored_bytes(logs: LogStore) -> None:
    sid = logs.create_stream(GROUP, "s", 1)
    logs.append(sid, [(500, "b"), (300, "héllo")], 1000)
    assert logs.stream(GROUP, "s") == StreamRow(sid, GROUP, "s", 1, 300, 500, 1000, 1 + 6)
    logs.append(sid, [(400, "cc"), (900, "")], 2000)
    assert logs.stream(GROUP, "s") == StreamRow(sid, GROUP, "s", 1, 300, 900, 2000, 9)
    logs.append(sid, [(100, "z")], 3000)
    stream = logs.stream(GROUP, "s")
    assert stream is not None
    assert (stream.first_event, stream.last_event, stream.stored_bytes) == (100, 900, 10)


def test_append_nothing_is_a_no_op(logs: LogStore) -> None:
    sid = logs.create_stream(GROUP, "s", 1)
    logs.append(sid, [], 5000)
    assert logs.stream(GROUP, "s") == StreamRow(sid, GROUP, "s", 1, None, None, None, 0)


def test_append_moves_the_container_cursor_in_the_same_call(db: Database) -> None:
    jobs = add_job_with_container(db, "job", "algo-1")
    logs = LogStore(db)
    sid = logs.create_stream(GROUP, "job/algo-1-1", 1)
    logs.append(sid, [(10, "a"), (20, "b")], 30, cursor=("job", "algo-1", 12345))
    assert jobs.hosts("job")[0].log_cursor_ns == 12345
    assert [e.message for e in logs.events([sid])] == ["a", "b"]
    # A cursor alone (no events) is still saved.
    logs.append(sid, [], 40, cursor=("job", "algo-1", 99999))
    assert jobs.hosts("job")[0].log_cursor_ns == 99999
    assert len(logs.events([sid])) == 2


def test_a_failed_append_does_not_move_the_cursor(db: Database) -> None:
    jobs = add_job_with_container(db, "job", "algo-1")
    logs = LogStore(db)
    with pytest.raises(sqlite3.IntegrityError):
        logs.append(4242, [(10, "lost")], 30, cursor=("job", "algo-1", 777))
    assert jobs.hosts("job")[0].log_cursor_ns == 0


@pytest.fixture
def filled(logs: LogStore) -> tuple[LogStore, int, int]:
    """Two streams with interleaved appends: ids 1..6, timestamps 100..600."""
    a = logs.create_stream(GROUP, "a", 1)
    b = logs.create_stream(GROUP, "b", 1)
    logs.append(a, [(100, "a1"), (200, "a2")], 1000)
    logs.append(b, [(300, "b1")], 1001)
    logs.append(a, [(400, "a3")], 1002)
    logs.append(b, [(500, "b2"), (600, "b3")], 1003)
    return logs, a, b


def test_events_forward_of_one_stream(filled: tuple[LogStore, int, int]) -> None:
    logs, a, _ = filled
    rows = logs.events([a])
    assert rows == [
        EventRow(1, a, 100, 1000, "a1"),
        EventRow(2, a, 200, 1000, "a2"),
        EventRow(4, a, 400, 1002, "a3"),
    ]


def test_events_of_several_streams_by_position(filled: tuple[LogStore, int, int]) -> None:
    logs, a, b = filled
    assert [r.message for r in logs.events([a, b])] == ["a1", "a2", "b1", "a3", "b2", "b3"]
    assert [r.message for r in logs.events([a, b], after_id=2, limit=2)] == ["b1", "a3"]
    assert [r.message for r in logs.events([a, b], before_id=5)] == ["a1", "a2", "b1", "a3"]
    assert [r.message for r in logs.events([a, b], after_id=1, before_id=4)] == ["a2", "b1"]
    assert logs.events([]) == []


def test_events_backward(filled: tuple[LogStore, int, int]) -> None:
    logs, a, b = filled
    assert [r.id for r in logs.events([a, b], newest_first=True, limit=4)] == [6, 5, 4, 3]
    assert [r.id for r in logs.events([a, b], newest_first=True, before_id=4)] == [3, 2, 1]
    assert [r.id for r in logs.events([b], newest_first=True)] == [6, 5, 3]


def test_events_time_filters_start_inclusive_end_exclusive(
    filled: tuple[LogStore, int, int],
) -> None:
    logs, a, b = filled
    assert [r.timestamp for r in logs.events([a, b], start_ms=200, end_ms=500)] == [200, 300, 400]
    assert [r.timestamp for r in logs.events([a, b], start_ms=601)] == []
    assert [r.timestamp for r in logs.events([a, b], end_ms=100)] == []


def test_streams_ordering_prefix_offset(logs: LogStore) -> None:
    early = logs.create_stream(GROUP, "job-a/algo-2-1", 50)
    late = logs.create_stream(GROUP, "job-a/algo-1-1", 10)
    logs.create_stream(GROUP, "job-b/algo-1-1", 30)
    logs.create_stream("/other", "job-a/algo-9-1", 1)
    logs.append(early, [(100, "x")], 100)
    logs.append(late, [(200, "y")], 200)
    names = [s.name for s in logs.streams(GROUP)]
    assert names == ["job-a/algo-1-1", "job-a/algo-2-1", "job-b/algo-1-1"]
    assert [s.name for s in logs.streams(GROUP, descending=True)] == names[::-1]
    assert [s.name for s in logs.streams(GROUP, prefix="job-a/")] == names[:2]
    assert [s.name for s in logs.streams(GROUP, prefix="JOB-A/")] == []
    assert [s.name for s in logs.streams(GROUP, offset=1, limit=1)] == ["job-a/algo-2-1"]
    # By last event time; a stream without events counts by its creation time (30).
    assert [s.name for s in logs.streams(GROUP, order_by_last_event=True)] == [
        "job-b/algo-1-1",
        "job-a/algo-2-1",
        "job-a/algo-1-1",
    ]
    assert [s.name for s in logs.streams_named(GROUP, ["job-b/algo-1-1", "nope"])] == [
        "job-b/algo-1-1"
    ]

"""store.jobs: JobStore on a real SQLite file (records, transitions, pages, leases, tags)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainforge.domain.allocation import Allocation, HostAllocation
from trainforge.domain.records import HostRef, QueueState, Schedule, TrainingJob, Transition
from trainforge.domain.status import (
    MESSAGES,
    SecondaryStatus,
    TrainingJobStatus,
    TransitionNotAllowed,
)
from trainforge.store.db import Database
from trainforge.store.jobs import DuplicateJob, JobStore, ListQuery, UnknownJob

S = SecondaryStatus
P = TrainingJobStatus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    db = Database(tmp_path / "trainforge.db")
    yield JobStore(db)
    db.close()


def make_job(name: str, created: float, **request: object) -> TrainingJob:
    return TrainingJob(
        name=name,
        arn=f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}",
        request={"TrainingJobName": name, **request},
        status=P.IN_PROGRESS,
        secondary_status=S.STARTING,
        creation_time=created,
        last_modified_time=created,
        transitions=[Transition(S.STARTING, created, None, MESSAGES["created"])],
    )


def queued(name: str) -> Schedule:
    return Schedule(name, QueueState.QUEUED, None, None, 0)


def add(store: JobStore, name: str, created: float) -> TrainingJob:
    job = make_job(name, created)
    store.insert(job, queued(name))
    return job


# -- records -------------------------------------------------------------------------------


def test_insert_get_round_trip(store: JobStore) -> None:
    job = TrainingJob(
        name="rich",
        arn="arn:aws:sagemaker:us-east-1:000000000000:training-job/rich",
        request={"HyperParameters": {"lr": "0.1"}, "Nested": [1, {"a": None}], "Text": "é"},
        status=P.FAILED,
        secondary_status=S.FAILED,
        creation_time=100.125,
        last_modified_time=200.5,
        transitions=[
            Transition(S.STARTING, 100.125, 150.0, "a"),
            Transition(S.FAILED, 150.0, 150.0, "b"),
        ],
        training_start_time=None,
        training_end_time=150.0,
        failure_reason="ClientError: nope",
        final_metrics=[{"MetricName": "loss", "Value": 0.5, "Timestamp": 149.0}],
        stop_requested=True,
    )
    given = alloc(2.0)
    store.insert(job, Schedule("rich", QueueState.DONE, "w:h:1:2", 9.0, 3, given))
    assert store.get("rich") == job
    assert store.schedule("rich") == Schedule("rich", QueueState.DONE, "w:h:1:2", 9.0, 3, given)
    assert store.exists("rich")
    assert store.count() == 1


def test_get_missing(store: JobStore) -> None:
    assert store.get("nope") is None
    assert not store.exists("nope")
    assert store.schedule("nope") is None


def test_duplicate_insert_raises_and_keeps_the_first(store: JobStore) -> None:
    first = add(store, "dup", 100.0)
    with pytest.raises(DuplicateJob, match=r"^dup$"):
        store.insert(make_job("dup", 200.0), queued("dup"))
    assert store.get("dup") == first
    assert store.count() == 1


def test_delete_removes_transitions_and_containers(store: JobStore) -> None:
    add(store, "gone", 100.0)
    store.save_host(HostRef("gone", "algo-1", "gone/algo-1-1", 0))
    store.delete("gone")
    assert store.get("gone") is None
    conn = store.db.read()
    assert conn.execute("SELECT COUNT(*) FROM transitions").fetchone()[0] == 0
    assert store.hosts("gone") == []


# -- transitions ---------------------------------------------------------------------------


def test_transition_is_stored(store: JobStore) -> None:
    add(store, "j", 100.0)
    moved = store.transition("j", S.DOWNLOADING, MESSAGES["downloading_data"], now=110.0)
    again = store.transition("j", S.DOWNLOADING, MESSAGES["downloading_image"], now=115.0)
    trained = store.transition("j", S.TRAINING, MESSAGES["training"], now=120.0)
    assert moved.transitions[-1].message == MESSAGES["downloading_data"]
    assert again.transitions[-1].message == MESSAGES["downloading_image"]
    stored = store.get("j")
    assert stored == trained
    assert stored is not None
    assert stored.transitions == [
        Transition(S.STARTING, 100.0, 110.0, MESSAGES["created"]),
        Transition(S.DOWNLOADING, 110.0, 120.0, MESSAGES["downloading_image"]),
        Transition(S.TRAINING, 120.0, None, MESSAGES["training"]),
    ]
    assert stored.training_start_time == 110.0
    assert stored.last_modified_time == 120.0
    rows = store.db.read().execute("SELECT idx FROM transitions WHERE job = 'j' ORDER BY idx")
    assert [r[0] for r in rows] == [0, 1, 2]


def test_transition_only_from_is_compare_and_set(store: JobStore) -> None:
    add(store, "j", 100.0)
    store.transition("j", S.DOWNLOADING, "d", now=110.0)
    before = store.get("j")
    result = store.transition(
        "j", S.PENDING, MESSAGES["pending"], only_from=(S.STARTING,), now=120.0
    )
    assert result == before
    assert store.get("j") == before
    moved = store.transition("j", S.TRAINING, "t", only_from=(S.DOWNLOADING,), now=130.0)
    assert moved.secondary_status is S.TRAINING
    assert store.get("j") == moved


def test_transition_request_stop(store: JobStore) -> None:
    add(store, "j", 100.0)
    assert not store.stop_requested("j")
    moved = store.transition(
        "j", S.STOPPING, MESSAGES["stopping"], request_stop=True, only_from=(S.STARTING,)
    )
    assert moved.stop_requested
    assert moved.status is P.STOPPING
    assert store.stop_requested("j")
    stored = store.get("j")
    assert stored is not None
    assert stored.stop_requested
    # A later transition without request_stop keeps the flag.
    store.transition("j", S.STOPPED, MESSAGES["stopped"])
    assert store.stop_requested("j")


def test_only_from_miss_does_not_request_stop(store: JobStore) -> None:
    add(store, "j", 100.0)
    result = store.transition(
        "j", S.STOPPING, "s", request_stop=True, only_from=(S.DOWNLOADING,), now=110.0
    )
    assert not result.stop_requested
    assert result.secondary_status is S.STARTING
    assert not store.stop_requested("j")


def test_terminal_transition_marks_the_queue_done(store: JobStore) -> None:
    add(store, "j", 100.0)
    store.transition("j", S.DOWNLOADING, "d", now=110.0)
    schedule = store.schedule("j")
    assert schedule is not None
    assert schedule.queue_state is QueueState.QUEUED
    failed = store.transition("j", S.FAILED, "f", failure_reason="ClientError: x", now=120.0)
    assert failed.failure_reason == "ClientError: x"
    schedule = store.schedule("j")
    assert schedule is not None
    assert schedule.queue_state is QueueState.DONE
    stored = store.get("j")
    assert stored is not None
    assert stored.failure_reason == "ClientError: x"
    assert stored.training_end_time == 120.0


def test_disallowed_transition_changes_nothing(store: JobStore) -> None:
    add(store, "j", 100.0)
    before = store.get("j")
    with pytest.raises(TransitionNotAllowed):
        store.transition("j", S.COMPLETED, "c", now=110.0)
    assert store.get("j") == before


def test_transition_of_unknown_job(store: JobStore) -> None:
    with pytest.raises(UnknownJob, match=r"^ghost$"):
        store.transition("ghost", S.DOWNLOADING, "d")


def test_transition_uses_the_clock_when_now_is_omitted(store: JobStore) -> None:
    add(store, "j", 100.0)
    before = time.time()
    moved = store.transition("j", S.DOWNLOADING, "d")
    after = time.time()
    assert round(before, 3) <= moved.last_modified_time <= round(after, 3) + 0.001


# -- pages ---------------------------------------------------------------------------------

# name → creation time; names and times are in different orders on purpose.
FIVE = {"delta": 1.0, "alpha": 2.0, "echo": 3.0, "bravo": 4.0, "charlie": 5.0}


@pytest.fixture
def five(store: JobStore) -> JobStore:
    for name, created in FIVE.items():
        add(store, name, created)
    return store


def all_pages(store: JobStore, query: ListQuery) -> list[list[str]]:
    pages = []
    after = None
    while True:
        jobs, after = store.page(ListQuery(**{**query.__dict__, "after_key": after}))
        pages.append([j.name for j in jobs])
        if after is None:
            return pages


def test_page_by_creation_time_descending(five: JobStore) -> None:
    jobs, key = five.page(ListQuery(limit=2))
    assert [j.name for j in jobs] == ["charlie", "bravo"]
    assert key == (4.0, "bravo")
    assert jobs[0].transitions == []
    assert all_pages(five, ListQuery(limit=2)) == [
        ["charlie", "bravo"],
        ["echo", "alpha"],
        ["delta"],
    ]


def test_page_by_creation_time_ascending(five: JobStore) -> None:
    assert all_pages(five, ListQuery(limit=2, descending=False)) == [
        ["delta", "alpha"],
        ["echo", "bravo"],
        ["charlie"],
    ]


def test_page_by_name_both_directions(five: JobStore) -> None:
    jobs, key = five.page(ListQuery(sort_by="Name", descending=False, limit=3))
    assert [j.name for j in jobs] == ["alpha", "bravo", "charlie"]
    assert key == ("charlie",)
    assert all_pages(five, ListQuery(sort_by="Name", descending=False, limit=3)) == [
        ["alpha", "bravo", "charlie"],
        ["delta", "echo"],
    ]
    assert all_pages(five, ListQuery(sort_by="Name", descending=True, limit=3)) == [
        ["echo", "delta", "charlie"],
        ["bravo", "alpha"],
    ]


def test_page_by_status_both_directions(five: JobStore) -> None:
    five.transition("alpha", S.FAILED, "f", now=10.0)
    five.transition("charlie", S.FAILED, "f", now=11.0)
    five.transition("echo", S.STOPPING, "s", now=12.0)
    five.transition("echo", S.STOPPED, "s", now=13.0)
    # Failed < InProgress < Stopped as text; then creation time, then name.
    assert all_pages(five, ListQuery(sort_by="Status", descending=False, limit=2)) == [
        ["alpha", "charlie"],
        ["delta", "bravo"],
        ["echo"],
    ]
    jobs, key = five.page(ListQuery(sort_by="Status", descending=True, limit=2))
    assert [j.name for j in jobs] == ["echo", "bravo"]
    assert key == ("InProgress", 4.0, "bravo")
    assert all_pages(five, ListQuery(sort_by="Status", descending=True, limit=2)) == [
        ["echo", "bravo"],
        ["delta", "charlie"],
        ["alpha"],
    ]


def test_page_exactly_full_has_no_next_key(five: JobStore) -> None:
    jobs, key = five.page(ListQuery(limit=5))
    assert len(jobs) == 5
    assert key is None


def test_page_ties_in_creation_time_are_cut_by_name(store: JobStore) -> None:
    for name in ("b", "a", "c"):
        add(store, name, 7.0)
    assert all_pages(store, ListQuery(limit=1)) == [["c"], ["b"], ["a"]]
    assert all_pages(store, ListQuery(limit=1, descending=False)) == [["a"], ["b"], ["c"]]


def test_name_contains_is_case_insensitive(store: JobStore) -> None:
    add(store, "Train-XGB-1", 1.0)
    add(store, "other", 2.0)
    add(store, "my-xgb-run", 3.0)
    jobs, key = store.page(ListQuery(name_contains="XgB"))
    assert [j.name for j in jobs] == ["my-xgb-run", "Train-XGB-1"]
    assert key is None
    jobs, _ = store.page(ListQuery(name_contains="%"))
    assert jobs == []


def test_time_filters_are_strict(five: JobStore) -> None:
    five.transition("bravo", S.DOWNLOADING, "d", now=50.0)
    jobs, _ = five.page(ListQuery(creation_after=2.0, creation_before=5.0, descending=False))
    assert [j.name for j in jobs] == ["echo", "bravo"]
    jobs, _ = five.page(ListQuery(modified_after=5.0))
    assert [j.name for j in jobs] == ["bravo"]
    jobs, _ = five.page(ListQuery(modified_before=2.0))
    assert [j.name for j in jobs] == ["delta"]


def test_status_filter_is_applied_after_the_page_is_cut(five: JobStore) -> None:
    five.transition("delta", S.FAILED, "f", now=10.0)
    five.transition("echo", S.FAILED, "f", now=11.0)
    query = ListQuery(limit=2, status_equals="Failed")
    # Pages by creation time, newest first: [charlie, bravo] [echo, alpha] [delta].
    jobs, key = five.page(query)
    assert jobs == []
    assert key == (4.0, "bravo")
    assert all_pages(five, query) == [[], ["echo"], ["delta"]]
    jobs, _ = five.page(ListQuery(limit=2, status_equals="Failed", after_key=key))
    assert jobs[0].status is P.FAILED


# -- scheduling ----------------------------------------------------------------------------


def alloc(cpus: float, gpu_ids: tuple[str, ...] = ()) -> Allocation:
    return Allocation((HostAllocation("algo-1", "ml.m5.large", "local", cpus, 1024, gpu_ids),))


def claim(store: JobStore, name: str, owner: str, lease: float = 30.0) -> object:
    return store.allocate(name, owner, lease, lambda in_use: alloc(1.0), claim=True)


def test_claim_with_an_allocation_once(store: JobStore) -> None:
    add(store, "j", 1.0)
    before = time.time()
    assert store.allocate("j", "w1", 30.0, lambda in_use: alloc(2.0), claim=True) == alloc(2.0)
    after = time.time()
    schedule = store.schedule("j")
    assert schedule is not None
    assert schedule.queue_state is QueueState.CLAIMED
    assert schedule.lease_owner == "w1"
    assert schedule.attempts == 1
    assert schedule.allocation == alloc(2.0)
    assert schedule.lease_expires is not None
    assert before + 30.0 <= schedule.lease_expires <= after + 30.0
    assert store.allocate("j", "w2", 30.0, lambda in_use: alloc(1.0), claim=True) is False
    schedule = store.schedule("j")
    assert schedule is not None
    assert schedule.lease_owner == "w1"
    assert schedule.attempts == 1


def test_a_job_that_does_not_fit_stays_queued(store: JobStore) -> None:
    add(store, "j", 1.0)
    assert store.allocate("j", "w1", 30.0, lambda in_use: None, claim=True) is None
    schedule = store.schedule("j")
    assert schedule is not None
    assert schedule.queue_state is QueueState.QUEUED
    assert schedule.allocation is None
    assert store.allocations() == []


def test_the_planner_sees_what_every_other_claimed_job_holds(store: JobStore) -> None:
    for name, created in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        add(store, name, created)
    store.allocate("a", "server", 30.0, lambda in_use: alloc(1.0, ("0",)), claim=True)
    store.insert(make_job("mine", 4.0), Schedule("mine", QueueState.CLAIMED, "run", None, 1))
    seen: list[list[Allocation]] = []

    def planner(in_use: list[Allocation]) -> Allocation:
        seen.append(in_use)
        return alloc(2.0, ("1",))

    # A worker holding its own job (trainforge run) allocates it without claiming.
    assert store.allocate("mine", "other", 30.0, planner, claim=False) is False
    assert store.allocate("mine", "run", 30.0, planner, claim=False) == alloc(2.0, ("1",))
    assert seen == [[alloc(1.0, ("0",))]]
    assert sorted(a.hosts[0].gpu_ids for a in store.allocations()) == [("0",), ("1",)]


def test_terminating_is_kept_once(store: JobStore) -> None:
    add(store, "j", 1.0)
    store.set_terminating("j", "stop", 100.0)
    store.set_terminating("j", "max_runtime", 200.0)
    schedule = store.schedule("j")
    assert schedule is not None
    assert (schedule.terminated_at, schedule.ending) == (100.0, "stop")


def test_queued_order_and_claimed(store: JobStore) -> None:
    add(store, "late", 3.0)
    add(store, "early", 1.0)
    add(store, "mid", 2.0)
    assert [s.name for s in store.queued()] == ["early", "mid", "late"]
    assert [s.name for s in store.queued(limit=2)] == ["early", "mid"]
    claim(store, "mid", "w")
    claim(store, "late", "w")
    assert [s.name for s in store.queued()] == ["early"]
    assert [s.name for s in store.claimed()] == ["mid", "late"]
    assert len(store.allocations()) == 2


def test_take_over_is_compare_and_set_on_the_owner(store: JobStore) -> None:
    add(store, "j", 1.0)
    assert not store.take_over("j", "w2", 30.0, None)  # still queued
    claim(store, "j", "w1")
    assert not store.take_over("j", "w2", 30.0, "someone-else")
    assert not store.take_over("j", "w2", 30.0, None)
    before = time.time()
    assert store.take_over("j", "w2", 60.0, "w1")
    schedule = store.schedule("j")
    assert schedule is not None
    assert schedule.lease_owner == "w2"
    assert schedule.attempts == 2
    assert schedule.queue_state is QueueState.CLAIMED
    assert schedule.lease_expires is not None
    assert schedule.lease_expires >= before + 60.0
    assert not store.take_over("j", "w3", 30.0, "w1")


def test_take_over_of_a_claim_without_owner(store: JobStore) -> None:
    job = make_job("j", 1.0)
    store.insert(job, Schedule("j", QueueState.CLAIMED, None, None, 1))
    assert store.take_over("j", "w2", 30.0, None)
    schedule = store.schedule("j")
    assert schedule is not None
    assert schedule.lease_owner == "w2"


def test_heartbeat_renews_only_the_owners_leases(store: JobStore) -> None:
    add(store, "mine", 1.0)
    add(store, "theirs", 2.0)
    claim(store, "mine", "w1", 1.0)
    claim(store, "theirs", "w2", 1.0)
    theirs_before = store.schedule("theirs")
    assert theirs_before is not None
    store.heartbeat("w1", ["mine", "theirs"], 1000.0)
    mine = store.schedule("mine")
    theirs = store.schedule("theirs")
    assert mine is not None
    assert theirs is not None
    assert mine.lease_expires is not None
    assert mine.lease_expires > time.time() + 900
    assert theirs.lease_expires == theirs_before.lease_expires
    store.heartbeat("w1", [], 5000.0)  # nothing to do, no error


def test_release_by_the_owner_only(store: JobStore) -> None:
    add(store, "j", 1.0)
    claim(store, "j", "w1")
    store.release("j", "w2")
    schedule = store.schedule("j")
    assert schedule is not None
    assert schedule.queue_state is QueueState.CLAIMED
    store.release("j", "w1")
    schedule = store.schedule("j")
    assert schedule is not None
    assert schedule.queue_state is QueueState.DONE
    assert schedule.lease_expires is None
    assert schedule.lease_owner == "w1"
    assert store.claimed() == []


# -- hosts and tags -------------------------------------------------------------------


def test_hosts_replace_and_order(store: JobStore) -> None:
    add(store, "j", 1.0)
    store.save_host(HostRef("j", "algo-2", "j/algo-2-5", 0))
    store.save_host(HostRef("j", "algo-1", "j/algo-1-5", 0))
    store.save_host(HostRef("j", "algo-1", "j/algo-1-6", 7))
    assert store.hosts("j") == [
        HostRef("j", "algo-1", "j/algo-1-6", 7),
        HostRef("j", "algo-2", "j/algo-2-5", 0),
    ]
    assert store.hosts("other") == []


def test_tags_upsert_keeps_order(store: JobStore) -> None:
    arn = "arn:aws:sagemaker:us-east-1:000000000000:training-job/j"
    store.add_tags(arn, [("a", "1"), ("b", "2"), ("c", "3")])
    store.add_tags(arn, [("b", "20"), ("d", "4")])
    assert store.tags(arn) == [("a", "1"), ("b", "20"), ("c", "3"), ("d", "4")]
    store.delete_tags(arn, ["a", "missing"])
    assert store.tags(arn) == [("b", "20"), ("c", "3"), ("d", "4")]
    assert store.tags("arn:other") == []

"""service.logs: CloudWatch Logs semantics (DescribeLogStreams, GetLogEvents, FilterLogEvents)
over a real LogStore."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trainforge.errors import LogsInvalidParameter, LogsResourceNotFound
from trainforge.service.logs import LogsService
from trainforge.store.db import Database
from trainforge.store.logs import LogStore

GROUP = "/aws/sagemaker/TrainingJobs"
STREAM = "job-a/algo-1-100"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    db = Database(tmp_path / "trainforge.db")
    yield LogStore(db)
    db.close()


@pytest.fixture
def service(store: LogStore) -> LogsService:
    return LogsService(store, "us-east-1", "000000000000")


def five_lines(store: LogStore) -> int:
    """One stream with events 1..5: 'line 0'..'line 4' at 1000..1004 ms."""
    sid = store.create_stream(GROUP, STREAM, 900)
    store.append(sid, [(1000 + i, f"line {i}") for i in range(5)], 2000)
    return sid


def get(service: LogsService, **params: Any) -> dict[str, Any]:
    return service.get_log_events({"logGroupName": GROUP, "logStreamName": STREAM, **params})


def messages(response: dict[str, Any]) -> list[str]:
    return [e["message"] for e in response["events"]]


def tok(direction: str, position: int) -> str:
    return f"{direction}/{position:020d}"


# -- GetLogEvents --------------------------------------------------------------------------


def test_get_from_head_pages_forward_and_ends_with_the_same_token(
    store: LogStore, service: LogsService
) -> None:
    five_lines(store)
    first = get(service, startFromHead=True, limit=2)
    assert first == {
        "events": [
            {"timestamp": 1000, "message": "line 0", "ingestionTime": 2000},
            {"timestamp": 1001, "message": "line 1", "ingestionTime": 2000},
        ],
        "nextForwardToken": tok("f", 2),
        "nextBackwardToken": tok("b", 1),
    }
    second = get(service, nextToken=first["nextForwardToken"], limit=2)
    assert messages(second) == ["line 2", "line 3"]
    third = get(service, nextToken=second["nextForwardToken"], limit=2)
    assert messages(third) == ["line 4"]
    assert third["nextForwardToken"] == tok("f", 5)
    end = get(service, nextToken=third["nextForwardToken"], limit=2)
    assert end == {"events": [], "nextForwardToken": tok("f", 5), "nextBackwardToken": tok("b", 6)}
    # New lines show up on the same token.
    store.append(1, [(2000, "line 5")], 3000)
    more = get(service, nextToken=tok("f", 5))
    assert messages(more) == ["line 5"]
    assert more["nextForwardToken"] == tok("f", 6)


def test_get_without_start_from_head_returns_the_tail(
    store: LogStore, service: LogsService
) -> None:
    five_lines(store)
    tail = get(service, limit=2)
    assert messages(tail) == ["line 3", "line 4"]
    assert tail["nextForwardToken"] == tok("f", 5)
    assert tail["nextBackwardToken"] == tok("b", 4)
    assert messages(get(service, startFromHead=False)) == [f"line {i}" for i in range(5)]


def test_get_backward_pages(store: LogStore, service: LogsService) -> None:
    five_lines(store)
    back = get(service, nextToken=tok("b", 4), limit=2)
    assert messages(back) == ["line 1", "line 2"]
    assert back["nextBackwardToken"] == tok("b", 2)
    assert back["nextForwardToken"] == tok("f", 3)
    start = get(service, nextToken=back["nextBackwardToken"], limit=2)
    assert messages(start) == ["line 0"]
    assert start["nextBackwardToken"] == tok("b", 1)
    done = get(service, nextToken=start["nextBackwardToken"])
    assert done["events"] == []
    assert done["nextBackwardToken"] == tok("b", 1)


def test_forward_token_after_reaching_the_start_reads_forward(
    store: LogStore, service: LogsService
) -> None:
    five_lines(store)
    done = get(service, nextToken=tok("b", 1))
    assert done["events"] == []
    assert done["nextForwardToken"].startswith("f/")
    assert messages(get(service, nextToken=done["nextForwardToken"])) != []


def test_get_on_an_empty_stream(store: LogStore, service: LogsService) -> None:
    store.create_stream(GROUP, STREAM, 900)
    assert get(service, startFromHead=True) == {
        "events": [],
        "nextForwardToken": tok("f", 0),
        "nextBackwardToken": tok("b", 1),
    }
    assert get(service)["events"] == []


def test_get_time_window(store: LogStore, service: LogsService) -> None:
    five_lines(store)
    window = get(service, startFromHead=True, startTime=1001, endTime=1003)
    assert messages(window) == ["line 1", "line 2"]
    assert messages(get(service, startTime=1003)) == ["line 3", "line 4"]


def test_get_limit_is_capped_at_10000(store: LogStore, service: LogsService) -> None:
    sid = store.create_stream(GROUP, STREAM, 900)
    store.append(sid, [(i, "x") for i in range(10_005)], 1)
    response = get(service, startFromHead=True, limit=50_000)
    assert len(response["events"]) == 10_000
    assert response["nextForwardToken"] == tok("f", 10_000)


def test_get_response_is_capped_at_1_mb(store: LogStore, service: LogsService) -> None:
    sid = store.create_stream(GROUP, STREAM, 900)
    # Each event costs 100_000 bytes + 26: ten fit in 1_048_576 bytes, eleven do not.
    store.append(sid, [(i, f"{i:02d}" + "m" * 99_998) for i in range(12)], 1)
    head = get(service, startFromHead=True)
    assert [m[:2] for m in messages(head)] == [f"{i:02d}" for i in range(10)]
    assert head["nextForwardToken"] == tok("f", 10)
    rest = get(service, nextToken=head["nextForwardToken"])
    assert [m[:2] for m in messages(rest)] == ["10", "11"]
    tail = get(service)
    assert [m[:2] for m in messages(tail)] == [f"{i:02d}" for i in range(2, 12)]
    assert tail["nextBackwardToken"] == tok("b", 3)


def test_get_returns_one_event_even_when_it_alone_exceeds_1_mb(
    store: LogStore, service: LogsService
) -> None:
    sid = store.create_stream(GROUP, STREAM, 900)
    store.append(sid, [(1, "x" * 1_100_000), (2, "small")], 1)
    head = get(service, startFromHead=True)
    assert [len(m) for m in messages(head)] == [1_100_000]
    assert messages(get(service, nextToken=head["nextForwardToken"])) == ["small"]


def test_get_errors(store: LogStore, service: LogsService) -> None:
    with pytest.raises(LogsResourceNotFound) as info:
        get(service)
    assert info.value.message == "The specified log group does not exist."
    assert info.value.code == "ResourceNotFoundException"
    five_lines(store)
    with pytest.raises(LogsResourceNotFound) as info:
        service.get_log_events({"logGroupName": GROUP, "logStreamName": "job-a/nope"})
    assert info.value.message == "The specified log stream does not exist."
    for bad in ("x/00000000000000000001", "f/abc", "f/", "garbage"):
        with pytest.raises(LogsInvalidParameter) as bad_info:
            get(service, nextToken=bad)
        assert bad_info.value.message == "The specified nextToken is invalid."
        assert bad_info.value.code == "InvalidParameterException"


def test_group_by_identifier(store: LogStore, service: LogsService) -> None:
    five_lines(store)
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{GROUP}"
    for identifier in (arn, arn + ":*", GROUP):
        response = service.get_log_events(
            {"logGroupIdentifier": identifier, "logStreamName": STREAM, "startFromHead": True}
        )
        assert len(response["events"]) == 5
    with pytest.raises(LogsInvalidParameter) as info:
        service.get_log_events(
            {"logGroupName": GROUP, "logGroupIdentifier": arn, "logStreamName": STREAM}
        )
    assert info.value.message == (
        "LogGroup name and LogGroup ARN are mutually exclusive parameters."
    )
    with pytest.raises(LogsInvalidParameter) as info:
        service.get_log_events({"logStreamName": STREAM})
    assert info.value.message == "Either logGroupName or logGroupIdentifier must be specified."


# -- DescribeLogStreams ----------------------------------------------------------------------


@pytest.fixture
def three_streams(store: LogStore) -> dict[str, int]:
    ids = {
        "job-a/algo-1-100": store.create_stream(GROUP, "job-a/algo-1-100", 100),
        "job-a/algo-2-100": store.create_stream(GROUP, "job-a/algo-2-100", 110),
        "job-b/algo-1-200": store.create_stream(GROUP, "job-b/algo-1-200", 200),
    }
    store.append(ids["job-a/algo-1-100"], [(5000, "late"), (4000, "early")], 6000)
    store.append(ids["job-a/algo-2-100"], [(1000, "x")], 1500)
    return ids


def names(response: dict[str, Any]) -> list[str]:
    return [s["logStreamName"] for s in response["logStreams"]]


def describe(service: LogsService, **params: Any) -> dict[str, Any]:
    return service.describe_log_streams({"logGroupName": GROUP, **params})


def test_describe_stream_shape(service: LogsService, three_streams: dict[str, int]) -> None:
    response = describe(service, logStreamNamePrefix="job-a/algo-1")
    sid = three_streams["job-a/algo-1-100"]
    assert response == {
        "logStreams": [
            {
                "logStreamName": "job-a/algo-1-100",
                "creationTime": 100,
                "firstEventTimestamp": 4000,
                "lastEventTimestamp": 5000,
                "lastIngestionTime": 6000,
                "uploadSequenceToken": str(10**55 + sid),
                "arn": "arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/"
                "TrainingJobs:log-stream:job-a/algo-1-100",
                "storedBytes": 9,
            }
        ]
    }
    empty = describe(service, logStreamNamePrefix="job-b/")["logStreams"][0]
    assert list(empty) == [
        "logStreamName",
        "creationTime",
        "uploadSequenceToken",
        "arn",
        "storedBytes",
    ]


def test_describe_orders_by_name(service: LogsService, three_streams: dict[str, int]) -> None:
    assert names(describe(service)) == ["job-a/algo-1-100", "job-a/algo-2-100", "job-b/algo-1-200"]
    assert names(describe(service, descending=True)) == [
        "job-b/algo-1-200",
        "job-a/algo-2-100",
        "job-a/algo-1-100",
    ]
    assert names(describe(service, logStreamNamePrefix="job-a/")) == [
        "job-a/algo-1-100",
        "job-a/algo-2-100",
    ]
    assert names(describe(service, logStreamNamePrefix="nothing")) == []


def test_describe_orders_by_last_event_time(
    service: LogsService, three_streams: dict[str, int]
) -> None:
    # Last events: algo-1 5000, algo-2 1000; job-b has none (creation time 200 counts).
    assert names(describe(service, orderBy="LastEventTime")) == [
        "job-b/algo-1-200",
        "job-a/algo-2-100",
        "job-a/algo-1-100",
    ]
    assert names(describe(service, orderBy="LastEventTime", descending=True)) == [
        "job-a/algo-1-100",
        "job-a/algo-2-100",
        "job-b/algo-1-200",
    ]


def test_describe_pages_with_limit_and_next_token(
    service: LogsService, three_streams: dict[str, int]
) -> None:
    first = describe(service, limit=2)
    assert names(first) == ["job-a/algo-1-100", "job-a/algo-2-100"]
    assert "nextToken" in first
    second = describe(service, limit=2, nextToken=first["nextToken"])
    assert names(second) == ["job-b/algo-1-200"]
    assert "nextToken" not in second
    exact = describe(service, limit=3)
    assert "nextToken" not in exact


def test_describe_last_event_time_with_prefix_is_refused(
    service: LogsService, three_streams: dict[str, int]
) -> None:
    with pytest.raises(LogsInvalidParameter) as info:
        describe(service, orderBy="LastEventTime", logStreamNamePrefix="job-a/")
    assert info.value.message == "Cannot order by LastEventTime with a logStreamNamePrefix."
    assert info.value.code == "InvalidParameterException"
    # The combination is refused even for a group that does not exist.
    with pytest.raises(LogsInvalidParameter):
        service.describe_log_streams(
            {"logGroupName": "/nope", "orderBy": "LastEventTime", "logStreamNamePrefix": "x"}
        )


def test_describe_errors(service: LogsService, three_streams: dict[str, int]) -> None:
    with pytest.raises(LogsResourceNotFound) as info:
        service.describe_log_streams({"logGroupName": "/nope"})
    assert info.value.message == "The specified log group does not exist."
    with pytest.raises(LogsInvalidParameter) as bad:
        describe(service, nextToken="not-a-token!")
    assert bad.value.message == "The specified nextToken is invalid."


# -- FilterLogEvents -------------------------------------------------------------------------


@pytest.fixture
def mixed(store: LogStore) -> None:
    a = store.create_stream(GROUP, "job-a/algo-1-100", 1)
    b = store.create_stream(GROUP, "job-a/algo-2-100", 1)
    c = store.create_stream(GROUP, "job-b/algo-1-100", 1)
    store.append(a, [(10, "INFO start"), (20, "ERROR timeout on read")], 100)
    store.append(b, [(15, "loss = 0.5"), (25, "ERROR disk full")], 101)
    store.append(c, [(30, "error lowercase"), (40, "WARN slow")], 102)


def filter_events(service: LogsService, **params: Any) -> dict[str, Any]:
    return service.filter_log_events({"logGroupName": GROUP, **params})


def test_filter_all_events_interleaved_by_arrival(service: LogsService, mixed: None) -> None:
    response = filter_events(service)
    assert [(e["logStreamName"], e["message"]) for e in response["events"]] == [
        ("job-a/algo-1-100", "INFO start"),
        ("job-a/algo-1-100", "ERROR timeout on read"),
        ("job-a/algo-2-100", "loss = 0.5"),
        ("job-a/algo-2-100", "ERROR disk full"),
        ("job-b/algo-1-100", "error lowercase"),
        ("job-b/algo-1-100", "WARN slow"),
    ]
    assert response["events"][0] == {
        "logStreamName": "job-a/algo-1-100",
        "timestamp": 10,
        "message": "INFO start",
        "ingestionTime": 100,
        "eventId": "0" * 55 + "1",
    }
    assert response["searchedLogStreams"] == [
        {"logStreamName": "job-a/algo-1-100", "searchedCompletely": True},
        {"logStreamName": "job-a/algo-2-100", "searchedCompletely": True},
        {"logStreamName": "job-b/algo-1-100", "searchedCompletely": True},
    ]
    assert "nextToken" not in response


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("ERROR", ["ERROR timeout on read", "ERROR disk full"]),
        ("ERROR timeout", ["ERROR timeout on read"]),
        ('"loss ="', ["loss = 0.5"]),
        ("?WARN ?INFO", ["INFO start", "WARN slow"]),
        ("ERROR -disk", ["ERROR timeout on read"]),
        ("error", ["error lowercase"]),
        ("   ", None),
    ],
)
def test_filter_patterns(
    service: LogsService, mixed: None, pattern: str, expected: list[str] | None
) -> None:
    response = filter_events(service, filterPattern=pattern)
    if expected is None:
        assert len(response["events"]) == 6
    else:
        assert messages(response) == expected


def test_filter_stream_selection(service: LogsService, mixed: None) -> None:
    by_prefix = filter_events(service, logStreamNamePrefix="job-a/", filterPattern="ERROR")
    assert messages(by_prefix) == ["ERROR timeout on read", "ERROR disk full"]
    assert [s["logStreamName"] for s in by_prefix["searchedLogStreams"]] == [
        "job-a/algo-1-100",
        "job-a/algo-2-100",
    ]
    by_name = filter_events(service, logStreamNames=["job-b/algo-1-100", "missing"])
    assert messages(by_name) == ["error lowercase", "WARN slow"]
    with pytest.raises(LogsInvalidParameter) as info:
        filter_events(service, logStreamNames=["a"], logStreamNamePrefix="a")
    assert info.value.message == (
        "logStreamNames and logStreamNamePrefix are mutually exclusive parameters."
    )


def test_filter_time_window(service: LogsService, mixed: None) -> None:
    response = filter_events(service, startTime=15, endTime=29)
    assert [e["timestamp"] for e in response["events"]] == [20, 15, 25]


def test_filter_end_time_is_inclusive(service: LogsService, mixed: None) -> None:
    response = filter_events(service, startTime=30, endTime=40)
    assert [e["timestamp"] for e in response["events"]] == [30, 40]


def test_filter_pages_with_next_token(service: LogsService, mixed: None) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if token:
            params["nextToken"] = token
        response = filter_events(service, **params)
        pages += 1
        seen += messages(response)
        token = response.get("nextToken")
        complete = {s["searchedCompletely"] for s in response["searchedLogStreams"]}
        assert complete == {token is None}
        if token is None:
            break
    assert pages == 4  # three full pages, then an empty last one
    assert seen == [
        "INFO start",
        "ERROR timeout on read",
        "loss = 0.5",
        "ERROR disk full",
        "error lowercase",
        "WARN slow",
    ]


def test_filter_pages_with_a_pattern(service: LogsService, mixed: None) -> None:
    first = filter_events(service, filterPattern="ERROR", limit=1)
    assert messages(first) == ["ERROR timeout on read"]
    second = filter_events(service, filterPattern="ERROR", limit=1, nextToken=first["nextToken"])
    assert messages(second) == ["ERROR disk full"]
    third = filter_events(service, filterPattern="ERROR", limit=1, nextToken=second["nextToken"])
    assert messages(third) == []
    assert "nextToken" not in third


def test_filter_response_is_capped_at_1_mb(store: LogStore, service: LogsService) -> None:
    sid = store.create_stream(GROUP, STREAM, 1)
    store.append(sid, [(i, f"{i:02d}" + "m" * 99_998) for i in range(12)], 1)
    first = filter_events(service)
    assert [m[:2] for m in messages(first)] == [f"{i:02d}" for i in range(10)]
    assert first["searchedLogStreams"] == [{"logStreamName": STREAM, "searchedCompletely": False}]
    rest = filter_events(service, nextToken=first["nextToken"])
    assert [m[:2] for m in messages(rest)] == ["10", "11"]
    assert "nextToken" not in rest


def test_filter_errors(service: LogsService, mixed: None) -> None:
    with pytest.raises(LogsResourceNotFound):
        service.filter_log_events({"logGroupName": "/nope"})
    with pytest.raises(LogsInvalidParameter) as info:
        filter_events(service, nextToken="%%%")
    assert info.value.message == "The specified nextToken is invalid."

"""runtime.logpump: every line a host printed reaches the sink once, also when the engine gives
the lines of stdout and stderr out of the order of their times, when a read resumes after the
engine went away, and when a worker resumes from the stored cursor."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from trainforge.engines.base import LogLine
from trainforge.errors import EngineError
from trainforge.runtime.logpump import LogPump


class _Engine:
    """A host's log as the engine answers it: ``reads[i]`` is the i-th answer (a list of lines,
    or an EngineError raised after the lines given before it)."""

    def __init__(self, reads: list[list[LogLine | EngineError]]) -> None:
        self.reads = reads
        self.asked: list[tuple[int, bool]] = []

    def logs(self, job: str, host: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        self.asked.append((since_ns, follow))
        answer = self.reads.pop(0) if self.reads else []
        for item in answer:
            if isinstance(item, EngineError):
                raise item
            yield item


def _pump(engine: _Engine, since_ns: int = 0, cursors: list[int] | None = None) -> list[str]:
    delivered: list[str] = []
    lock = threading.Lock()

    def sink(host: str, lines: list[LogLine], cursor: int) -> None:
        with lock:
            delivered.extend(line.text for line in lines)
            if cursors is not None:
                cursors.append(cursor)

    pump = LogPump(engine, "job", sink, flush_seconds=0.01)  # type: ignore[arg-type]
    pump.follow("algo-1", since_ns)
    assert pump.close(timeout=10) == []
    return delivered


def test_a_line_older_than_the_one_before_it_is_kept() -> None:
    # The script printed the error (stderr), then "uri none" (stdout); the engine stamped stdout's
    # line first but wrote stderr's first.
    engine = _Engine(
        [[LogLine(101, "wget: bad address ''"), LogLine(100, "uri none"), LogLine(102, "s3 none")]]
    )
    assert _pump(engine) == ["wget: bad address ''", "uri none", "s3 none"]


def test_the_stored_cursor_is_the_newest_time_delivered() -> None:
    cursors: list[int] = []
    engine = _Engine([[LogLine(101, "stderr first"), LogLine(100, "stdout, stamped earlier")]])
    assert _pump(engine, cursors=cursors) == ["stderr first", "stdout, stamped earlier"]
    # Whether the two lines go to the sink together or apart, the cursor never goes back.
    assert cursors and cursors[-1] == 101 and cursors == sorted(cursors)


def test_a_read_after_the_engine_went_away_delivers_each_line_once() -> None:
    engine = _Engine(
        [
            [LogLine(100, "one"), LogLine(101, "two"), EngineError("the engine restarts")],
            # Read again from the last line: the engine answers from that line on.
            [LogLine(101, "two"), LogLine(102, "three")],
        ]
    )
    assert _pump(engine) == ["one", "two", "three"]
    assert engine.asked[:2] == [(0, True), (101, True)]


def test_a_worker_resuming_from_the_stored_cursor_skips_what_was_stored() -> None:
    engine = _Engine([[LogLine(100, "stored"), LogLine(101, "new")]])
    assert _pump(engine, since_ns=100) == ["new"]

"""Carries every output line of a job's hosts to a sink, in batches, without losing one.

One reader thread per host follows its log through the engine and appends each line to that
host's buffer; one flusher thread hands each host's buffered lines to the sink every
``flush_seconds`` (so a line reaches the store, and GetLogEvents, well within a second) together
with the timestamp of the last line, the cursor a new worker resumes from after a crash.

Nothing is dropped on the way: a buffer holds at most ``max_buffered`` lines, and a reader that
finds its buffer full waits, so a sink that cannot keep up (or a store whose disk is full, which
the sink waits out) slows the readers instead of growing memory, and the engine keeps the lines
meanwhile. A reader whose engine goes away (a daemon restarting) reads again from its last line
once the engine answers.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from trainforge.engines.base import Engine, LogLine
from trainforge.errors import EngineError

Sink = Callable[[str, list[LogLine], int], None]
log = logging.getLogger("trainforge.runtime")
_RETRY_SECONDS = 0.5
_FULL_WAIT_SECONDS = 0.01


class LogPump:
    def __init__(
        self,
        engine: Engine,
        job: str,
        sink: Sink,
        flush_seconds: float = 0.2,
        max_batch: int = 10_000,
        max_buffered: int = 50_000,
    ) -> None:
        self._engine = engine
        self._job = job
        self._sink = sink
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._max_buffered = max_buffered
        # deque appends and pops are atomic: readers and the flusher share them without a lock.
        self._buffers: dict[str, collections.deque[LogLine]] = {}
        # Per host, the newest line time delivered (only the flusher delivers).
        self._newest: dict[str, int] = {}
        self._readers: list[threading.Thread] = []
        self._closing = threading.Event()
        self._readers_done = threading.Event()
        self._errors: list[BaseException] = []
        self._lines_read = 0
        self._lines_done = 0
        self._flusher = threading.Thread(target=self._flush_loop, name="log-flush", daemon=True)
        self._flusher.start()

    def follow(self, host: str, since_ns: int = 0) -> None:
        self._buffers[host] = collections.deque()
        thread = threading.Thread(
            target=self._read, args=(host, since_ns), name=f"logs-{host}", daemon=True
        )
        self._readers.append(thread)
        thread.start()

    def _read(self, host: str, since_ns: int) -> None:
        buffer = self._buffers[host]
        last = since_ns
        follow = True
        while True:
            # Lines at or before where this read starts were delivered by an earlier read (or
            # the worker before this one). Within one read every line counts, also one older
            # than the line before it: the engine stamps stdout's and stderr's lines apart, so
            # the two streams' lines do not always come in the order of their times.
            start = last
            try:
                for line in self._engine.logs(self._job, host, start, follow=follow):
                    if start and line.ts_ns <= start:
                        continue
                    last = line.ts_ns if line.ts_ns > last else last
                    while len(buffer) >= self._max_buffered:
                        time.sleep(_FULL_WAIT_SECONDS)
                    buffer.append(line)
                    self._lines_read += 1
            except EngineError as exc:
                if self._closing.is_set() and not follow:
                    self._errors.append(exc)
                    return
                # The engine is away: read again from the last line once it answers.
                self._closing.wait(_RETRY_SECONDS)
                continue
            except BaseException as exc:
                self._errors.append(exc)
                return
            if not follow:
                return
            # A follow stream can close before the engine has written a host's last output (a
            # final line without a newline, typically). Once every host has ended, everything is
            # written: read again after the last line seen.
            self._closing.wait()
            follow = False

    def _flush_loop(self) -> None:
        while True:
            finished = self._readers_done.wait(self._flush_seconds)
            self._flush()
            if finished:
                self._flush()
                return

    def _flush(self) -> None:
        for host, buffer in list(self._buffers.items()):
            while buffer:
                batch = [buffer.popleft() for _ in range(min(len(buffer), self._max_batch))]
                self._deliver(host, batch)

    def _deliver(self, host: str, batch: list[LogLine]) -> None:
        try:
            # The newest time delivered so far, not the batch's last line's (the lines of stdout
            # and stderr may come out of order): a worker resuming from it reads nothing twice.
            newest = max(self._newest.get(host, 0), *(line.ts_ns for line in batch))
            self._newest[host] = newest
            self._sink(host, batch, newest)
        except BaseException as exc:
            self._errors.append(exc)
        self._lines_done += len(batch)

    def _moved(self) -> int:
        return self._lines_read + self._lines_done

    def close(self, timeout: float = 30.0) -> list[BaseException]:
        """Call once every host has ended: read what the follow streams missed, flush, stop.
        Waits as long as the readers make progress (a chatty job's log can take a while to
        read) and the sink takes (it may be waiting for disk space); gives a reader up after
        ``timeout`` seconds without a line. A line counts only once it is whole, and a 10 MiB
        line read from a busy engine can take many seconds: the timeout is generous, since it
        only ever ends a wait for an engine whose log stream hangs.

        Returns the errors the readers and the sink met, so the caller can log them."""
        self._closing.set()
        progress = (self._moved(), time.monotonic())
        for thread in self._readers:
            while thread.is_alive():
                thread.join(0.5)
                if self._moved() != progress[0]:
                    progress = (self._moved(), time.monotonic())
                elif time.monotonic() - progress[1] > timeout:
                    self._errors.append(
                        TimeoutError(f"the log of {thread.name[5:]} stopped answering")
                    )
                    break
        self._readers_done.set()
        while self._flusher.is_alive():
            self._flusher.join(30)
            if self._flusher.is_alive():
                log.warning("job %s: still storing its last log lines", self._job)
        return list(self._errors)

"""Carries every output line of a job's containers to a sink, in small batches.

One reader thread per container follows its log; one flusher thread hands each host's lines to
the sink at least every ``flush_seconds`` (so a line reaches the store, and GetLogEvents, well
within a second) together with the timestamp of the last line, the cursor a new worker resumes
from after a crash.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from trainforge.engines.base import Engine, LogLine

Sink = Callable[[str, list[LogLine], int], None]
_DONE = object()


class LogPump:
    def __init__(
        self, engine: Engine, sink: Sink, flush_seconds: float = 0.2, max_batch: int = 2000
    ) -> None:
        self._engine = engine
        self._sink = sink
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue()
        self._readers: list[threading.Thread] = []
        self._exited = threading.Event()
        self._errors: list[BaseException] = []
        self._flusher = threading.Thread(target=self._flush_loop, name="log-flush", daemon=True)
        self._flusher.start()

    def follow(self, host: str, container_id: str, since_ns: int = 0) -> None:
        thread = threading.Thread(
            target=self._read,
            args=(host, container_id, since_ns),
            name=f"logs-{host}",
            daemon=True,
        )
        self._readers.append(thread)
        thread.start()

    def _read(self, host: str, container_id: str, since_ns: int) -> None:
        last = since_ns
        try:
            for follow in (True, False):
                floor = since_ns if follow else last
                for line in self._engine.logs(container_id, floor, follow=follow):
                    if floor and line.ts_ns <= floor:
                        continue
                    last = max(last, line.ts_ns)
                    self._queue.put((host, line))
                # A follow stream can close before the engine has written the container's last
                # output (a final line without a newline, typically). Once the container has
                # exited everything is written: read again after the last line seen.
                self._exited.wait()
        except BaseException as exc:
            self._errors.append(exc)

    def _flush_loop(self) -> None:
        batches: dict[str, list[LogLine]] = {}
        deadline = time.monotonic() + self._flush_seconds
        finished = False
        while not finished:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                host, item = self._queue.get(timeout=timeout)
                if item is _DONE:
                    finished = True
                else:
                    assert isinstance(item, LogLine)
                    batch = batches.setdefault(host, [])
                    batch.append(item)
                    if len(batch) < self._max_batch:
                        continue
            except queue.Empty:
                pass
            for name, batch in batches.items():
                if batch:
                    self._deliver(name, batch)
            batches = {}
            deadline = time.monotonic() + self._flush_seconds

    def _deliver(self, host: str, batch: list[LogLine]) -> None:
        try:
            self._sink(host, batch, batch[-1].ts_ns)
        except BaseException as exc:
            self._errors.append(exc)

    def close(self, timeout: float = 10.0) -> list[BaseException]:
        """Call once every container has exited: read what the follow streams missed, flush,
        and stop.

        Returns the errors the readers and the sink met, so the caller can log them."""
        end = time.monotonic() + timeout
        self._exited.set()
        for thread in self._readers:
            thread.join(max(0.0, end - time.monotonic()))
        self._queue.put(("", _DONE))
        self._flusher.join(max(0.1, end - time.monotonic()))
        return list(self._errors)

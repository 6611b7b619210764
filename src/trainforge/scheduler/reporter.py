"""The runtime's ``Reporter`` for one job, backed by the store: phases become status transitions,
log lines become CloudWatch events with the host's cursor, the SIGTERM moment is kept for a
takeover. Every write waits out a full disk (``durably``): a job never dies because the store
could not grow for a while, and no line is dropped meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from trainforge.domain import contract
from trainforge.domain.metrics import MetricPoint
from trainforge.domain.records import HostRef, TrainingJob
from trainforge.domain.status import MESSAGES, RUNNING_SECONDARY, SecondaryStatus
from trainforge.engines.base import LogLine
from trainforge.errors import StoreFull
from trainforge.runtime.metric_scraper import MetricScraper
from trainforge.runtime.report import Ending, Phase
from trainforge.store.jobs import JobStore
from trainforge.store.logs import LogStore
from trainforge.store.metrics import MetricStore

# CloudWatch Logs caps an event at 256 KiB including 26 bytes of overhead.
MAX_EVENT_CHARS = 256 * 1024 - 26

Echo = Callable[[str, Sequence[str]], None]
"""(host, lines) → shown to a person as the lines arrive (``trainforge run``)."""

T = TypeVar("T")
log = logging.getLogger("trainforge.scheduler")

_PHASES = {
    Phase.DOWNLOADING_DATA: (SecondaryStatus.DOWNLOADING, MESSAGES["downloading_data"]),
    Phase.DOWNLOADING_IMAGE: (SecondaryStatus.DOWNLOADING, MESSAGES["downloading_image"]),
    Phase.TRAINING: (SecondaryStatus.TRAINING, MESSAGES["training"]),
    Phase.UPLOADING: (SecondaryStatus.UPLOADING, MESSAGES["uploading"]),
    Phase.STOPPING: (SecondaryStatus.STOPPING, MESSAGES["stopping"]),
    Phase.INTERRUPTED: (SecondaryStatus.INTERRUPTED, MESSAGES["interrupted"]),
}


def durably(write: Callable[[], T], what: str, first_wait: float = 0.2) -> T:
    """Run a store write until it is stored: a full disk is waited out, never given up on."""
    wait = first_wait
    waited = 0.0
    logged = -30.0
    while True:
        try:
            return write()
        except StoreFull as exc:
            if waited - logged >= 30:
                log.warning("%s waits for disk space: %s", what, exc)
                logged = waited
            time.sleep(wait)
            waited += wait
            wait = min(wait * 2, 5.0)


def cloudwatch_message(text: str) -> list[str]:
    """A container line as SageMaker stores it: tabs as ``#011`` (syslog escaping, spec §11),
    lines longer than an event cut into several events."""
    text = text.replace("\t", "#011").rstrip("\r")
    if len(text) <= MAX_EVENT_CHARS:
        return [text]
    return [text[i : i + MAX_EVENT_CHARS] for i in range(0, len(text), MAX_EVENT_CHARS)]


def scraper_of(job: TrainingJob) -> MetricScraper | None:
    """The metric scraper of ``job``'s MetricDefinitions (validated at create time)."""
    definitions = job.request.get("AlgorithmSpecification", {}).get("MetricDefinitions") or []
    return MetricScraper(definitions) if definitions else None


class JobReporter:
    def __init__(
        self,
        jobs: JobStore,
        logs: LogStore,
        job: str,
        echo: Echo | None = None,
        scraper: MetricScraper | None = None,
    ) -> None:
        self.jobs = jobs
        self.logs = logs
        self.job = job
        self.echo = echo
        self.scraper = scraper
        self.metric_store = MetricStore(logs.db)
        self._streams: dict[str, int] = {}
        self._pending_warnings: list[str] = []
        self._lock = threading.Lock()

    def phase(self, phase: Phase) -> float:
        status, message = _PHASES[phase]
        now = time.time()
        only_from: Sequence[SecondaryStatus] = RUNNING_SECONDARY
        if status is SecondaryStatus.STOPPING:
            only_from = (*RUNNING_SECONDARY, SecondaryStatus.STOPPING)
        moved = durably(
            lambda: self.jobs.transition(self.job, status, message, only_from=only_from, now=now),
            f"job {self.job}'s status",
        )
        # A move that happened carries this call's time; a refused one (the job is stopping)
        # leaves the job as it was.
        if self.echo is not None and moved.last_modified_time == round(now, 3):
            self.echo("trainforge", [f"[trainforge] {moved.secondary_status} - {message}"])
        return round(now, 3)

    def stream_opened(self, host: str, stream: str) -> None:
        durably(
            lambda: self.jobs.save_host(HostRef(self.job, host, stream, 0)),
            f"job {self.job}'s hosts",
        )
        self.attach_stream(host, stream)

    def attach_stream(self, host: str, stream: str) -> None:
        started_ms = int(stream.rsplit("-", 1)[-1]) * 1000
        stream_id = durably(
            lambda: self.logs.create_stream(contract.LOG_GROUP, stream, started_ms),
            f"job {self.job}'s log",
        )
        with self._lock:
            self._streams[host] = stream_id
            pending, self._pending_warnings = self._pending_warnings, []
        if pending:
            now_ms = int(time.time() * 1000)
            durably(
                lambda: self.logs.append(stream_id, [(now_ms, w) for w in pending], now_ms),
                f"job {self.job}'s log",
            )

    def log_lines(self, host: str, lines: list[LogLine], cursor_ns: int) -> None:
        stream_id = self._streams.get(host)
        if stream_id is None:
            return
        now_ms = int(time.time() * 1000)
        events: list[tuple[int, str]] = []
        for line in lines:
            ts_ms = line.ts_ns // 1_000_000 if line.ts_ns else now_ms
            text = line.text
            if "\t" in text or len(text) > MAX_EVENT_CHARS or text.endswith("\r"):
                events.extend((ts_ms, part) for part in cloudwatch_message(text))
            else:
                events.append((ts_ms, text))
        if self.echo is not None:
            self.echo(host, [line.text for line in lines])
        points = (
            self.scraper.scrape(host, [(ts / 1000, text) for ts, text in events])
            if self.scraper
            else []
        )
        durably(
            lambda: self.logs.append(
                stream_id,
                events,
                now_ms,
                cursor=(self.job, host, cursor_ns),
                metrics=(self.job, points) if points else None,
            ),
            f"job {self.job}'s log",
        )

    def warning(self, text: str) -> None:
        line = f"[trainforge] WARNING: {text}"
        if self.echo is not None:
            self.echo("trainforge", [line])
        with self._lock:
            stream_id = next(iter(self._streams.values()), None)
            if stream_id is None:
                self._pending_warnings.append(line)
                return
        now_ms = int(time.time() * 1000)
        durably(
            lambda: self.logs.append(stream_id, [(now_ms, line)], now_ms), f"job {self.job}'s log"
        )

    def metrics(self, points: list[MetricPoint]) -> None:
        durably(lambda: self.metric_store.append(self.job, points), f"job {self.job}'s metrics")

    def terminating(self, ending: Ending, at: float) -> None:
        durably(
            lambda: self.jobs.set_terminating(self.job, ending.value, at),
            f"job {self.job}'s stop time",
        )

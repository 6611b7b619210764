"""Log streams and log events in SQLite, as CloudWatch Logs would hold them.

Events are kept per stream in arrival order; an event's row id is its position, which the Logs
API turns into ``f/<id>`` and ``b/<id>`` tokens. Appending a batch also advances the container's
log cursor in the same transaction, so a worker that takes over a job after a crash neither
loses nor repeats a line. Times are epoch milliseconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from trainforge.domain.metrics import MetricPoint
from trainforge.store import metrics as metric_rows
from trainforge.store.db import Database


@dataclass(frozen=True)
class StreamRow:
    id: int
    log_group: str
    name: str
    creation_time: int
    first_event: int | None
    last_event: int | None
    last_ingestion: int | None
    stored_bytes: int


@dataclass(frozen=True)
class EventRow:
    id: int
    stream_id: int
    timestamp: int
    ingestion_time: int
    message: str


_STREAM_COLUMNS = (
    "id, log_group, name, creation_time, first_event, last_event, last_ingestion, stored_bytes"
)


def _stream(row: sqlite3.Row) -> StreamRow:
    return StreamRow(*row)


class LogStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_stream(self, log_group: str, name: str, creation_ms: int) -> int:
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO log_streams (log_group, name, creation_time) VALUES (?,?,?)",
                (log_group, name, creation_ms),
            )
            row = conn.execute(
                "SELECT id FROM log_streams WHERE log_group = ? AND name = ?", (log_group, name)
            ).fetchone()
        return int(row[0])

    def append(
        self,
        stream_id: int,
        events: Sequence[tuple[int, str]],
        ingestion_ms: int,
        cursor: tuple[str, str, int] | None = None,
        metrics: tuple[str, Sequence[MetricPoint]] | None = None,
    ) -> None:
        """Store ``(timestamp_ms, message)`` events; ``cursor`` is (job, host, log_cursor_ns);
        ``metrics`` (job, points) are the metric points scraped from these events, stored in
        the same transaction."""
        if not events and cursor is None:
            return
        with self.db.write() as conn:
            if metrics is not None:
                metric_rows.insert(conn, *metrics)
            if events:
                conn.executemany(
                    "INSERT INTO log_events (stream_id, timestamp, ingestion_time, message)"
                    " VALUES (?,?,?,?)",
                    [(stream_id, ts, ingestion_ms, msg) for ts, msg in events],
                )
                first = min(ts for ts, _ in events)
                last = max(ts for ts, _ in events)
                size = sum(len(msg.encode("utf-8", "replace")) for _, msg in events)
                conn.execute(
                    "UPDATE log_streams SET first_event = MIN(COALESCE(first_event, ?), ?),"
                    " last_event = MAX(COALESCE(last_event, ?), ?), last_ingestion = ?,"
                    " stored_bytes = stored_bytes + ? WHERE id = ?",
                    (first, first, last, last, ingestion_ms, size, stream_id),
                )
            if cursor is not None:
                job, host, cursor_ns = cursor
                conn.execute(
                    "UPDATE containers SET log_cursor_ns = ? WHERE job = ? AND host = ?",
                    (cursor_ns, job, host),
                )

    def stream(self, log_group: str, name: str) -> StreamRow | None:
        row = (
            self.db.read()
            .execute(
                f"SELECT {_STREAM_COLUMNS} FROM log_streams WHERE log_group = ? AND name = ?",
                (log_group, name),
            )
            .fetchone()
        )
        return _stream(row) if row else None

    def group_exists(self, log_group: str) -> bool:
        row = (
            self.db.read()
            .execute("SELECT 1 FROM log_streams WHERE log_group = ? LIMIT 1", (log_group,))
            .fetchone()
        )
        return row is not None

    def streams(
        self,
        log_group: str,
        prefix: str | None = None,
        order_by_last_event: bool = False,
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> list[StreamRow]:
        sql = f"SELECT {_STREAM_COLUMNS} FROM log_streams WHERE log_group = ?"
        args: list[object] = [log_group]
        if prefix:
            sql += " AND substr(name, 1, ?) = ?"
            args += [len(prefix), prefix]
        direction = "DESC" if descending else "ASC"
        if order_by_last_event:
            sql += f" ORDER BY COALESCE(last_event, creation_time) {direction}, name {direction}"
        else:
            sql += f" ORDER BY name {direction}"
        sql += " LIMIT ? OFFSET ?"
        args += [limit, offset]
        return [_stream(r) for r in self.db.read().execute(sql, args)]

    def streams_named(self, log_group: str, names: Sequence[str]) -> list[StreamRow]:
        marks = ",".join("?" * len(names))
        rows = self.db.read().execute(
            f"SELECT {_STREAM_COLUMNS} FROM log_streams WHERE log_group = ? AND name IN ({marks})"
            " ORDER BY name",
            [log_group, *names],
        )
        return [_stream(r) for r in rows]

    def events(
        self,
        stream_ids: Sequence[int],
        *,
        after_id: int | None = None,
        before_id: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 10000,
        newest_first: bool = False,
    ) -> list[EventRow]:
        """Events of the streams by position; ``newest_first`` reads from the end backwards."""
        if not stream_ids:
            return []
        marks = ",".join("?" * len(stream_ids))
        sql = (
            "SELECT id, stream_id, timestamp, ingestion_time, message FROM log_events"
            f" WHERE stream_id IN ({marks})"
        )
        args: list[object] = list(stream_ids)
        if after_id is not None:
            sql += " AND id > ?"
            args.append(after_id)
        if before_id is not None:
            sql += " AND id < ?"
            args.append(before_id)
        if start_ms is not None:
            sql += " AND timestamp >= ?"
            args.append(start_ms)
        if end_ms is not None:
            sql += " AND timestamp < ?"
            args.append(end_ms)
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id ASC"
        sql += " LIMIT ?"
        args.append(limit)
        rows = self.db.read().execute(sql, args).fetchall()
        return [EventRow(*r) for r in rows]

"""Metric points of training jobs in SQLite: the time series the CloudWatch metrics API, the
``FinalMetricDataList`` of Describe and ``trainforge metrics`` read.

Points are written in the same transaction as the log lines they came from (``insert``), so a
worker that takes over a job after a crash neither loses nor repeats a point. The last value of
each algorithm metric is kept on the job row as well, so Describe reads it without a query here.
Times are epoch seconds. Nothing here decides what a metric means.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from trainforge.domain.metrics import MetricPoint, MetricSource
from trainforge.store.db import Database


@dataclass(frozen=True)
class SeriesName:
    job: str
    metric: str
    source: MetricSource
    host: str | None  # set for instance metrics: their dimension names the host


def insert(conn: sqlite3.Connection, job: str, points: Sequence[MetricPoint]) -> None:
    """Store ``points`` of ``job`` inside the caller's write transaction, and move the job's
    final algorithm metrics forward."""
    if not points:
        return
    conn.executemany(
        "INSERT INTO metric_points (job, metric, source, host, timestamp, value)"
        " VALUES (?,?,?,?,?,?)",
        [(job, p.metric, p.source.value, p.host, p.timestamp, p.value) for p in points],
    )
    latest: dict[str, MetricPoint] = {}
    for p in points:
        if p.source is MetricSource.ALGORITHM:
            seen = latest.get(p.metric)
            if seen is None or p.timestamp >= seen.timestamp:
                latest[p.metric] = p
    if not latest:
        return
    row = conn.execute("SELECT final_metrics FROM jobs WHERE name = ?", (job,)).fetchone()
    if row is None:
        return
    finals = {m["MetricName"]: m for m in json.loads(row[0])}
    for name, p in latest.items():
        stamp = float(int(p.timestamp))
        known = finals.get(name)
        if known is None or stamp >= known["Timestamp"]:
            finals[name] = {"MetricName": name, "Value": p.value, "Timestamp": stamp}
    conn.execute(
        "UPDATE jobs SET final_metrics = ? WHERE name = ?",
        (json.dumps(list(finals.values())), job),
    )


class MetricStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, job: str, points: Sequence[MetricPoint]) -> None:
        """Store points that come with no log lines (the instance metrics)."""
        if points:
            with self.db.write() as conn:
                insert(conn, job, points)

    def series_names(self, job: str | None = None, metric: str | None = None) -> list[SeriesName]:
        """Every distinct series, optionally of one job and/or one metric name; instance
        metrics once per host, algorithm metrics once per job."""
        return [name for name, _ in self.series_last_seen(job, metric)]

    def points(
        self,
        job: str,
        metric: str,
        source: MetricSource = MetricSource.ALGORITHM,
        host: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[MetricPoint]:
        """The points of one series in time order; ``start`` inclusive, ``end`` exclusive, as
        CloudWatch reads a range. ``host`` narrows to one host (instance metrics)."""
        sql = (
            "SELECT metric, host, timestamp, value, source FROM metric_points"
            " WHERE job = ? AND metric = ? AND source = ?"
        )
        args: list[object] = [job, metric, source.value]
        if host is not None:
            sql += " AND host = ?"
            args.append(host)
        if start is not None:
            sql += " AND timestamp >= ?"
            args.append(start)
        if end is not None:
            sql += " AND timestamp < ?"
            args.append(end)
        sql += " ORDER BY timestamp, id"
        return [
            MetricPoint(r[0], r[1], r[2], r[3], MetricSource(r[4]))
            for r in self.db.read().execute(sql, args)
        ]

    def series_last_seen(
        self, job: str | None = None, metric: str | None = None
    ) -> list[tuple[SeriesName, float]]:
        """The series ``series_names`` lists, each with the time of its newest point."""
        sql = (
            "SELECT job, metric, source,"
            " CASE source WHEN 'instance' THEN host ELSE NULL END AS series_host,"
            " MAX(timestamp) FROM metric_points"
        )
        where: list[str] = []
        args: list[object] = []
        if job is not None:
            where.append("job = ?")
            args.append(job)
        if metric is not None:
            where.append("metric = ?")
            args.append(metric)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " GROUP BY job, metric, source, series_host ORDER BY job, metric, series_host"
        return [
            (SeriesName(r[0], r[1], MetricSource(r[2]), r[3]), float(r[4]))
            for r in self.db.read().execute(sql, args)
        ]

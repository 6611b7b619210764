"""Training job records in SQLite: jobs, their status transitions, tags, the scheduler's lease
columns and the containers launched for them.

``JobStore.transition`` is the one place a job's status is written: it loads the job inside a
write transaction, asks ``domain.status.plan_transition`` whether and how it moves, and stores
the result. ``JobStore.allocate`` is the one place a job is given resources: it reads what every
claimed job holds and stores the new allocation in one transaction, so two workers sharing a
home (a server and ``trainforge run``) never hand out the same GPU. Nothing here decides
SageMaker semantics beyond that.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from trainforge.domain.allocation import Allocation
from trainforge.domain.records import HostRef, QueueState, Schedule, TrainingJob, Transition
from trainforge.domain.request import CreateTrainingJobRequest
from trainforge.domain.status import (
    SecondaryStatus,
    TrainingJobStatus,
    plan_transition,
)
from trainforge.errors import TrainforgeError
from trainforge.store.db import Database


class DuplicateJob(TrainforgeError):
    pass


class UnknownJob(TrainforgeError):
    pass


_JOB_COLUMNS = (
    "name, arn, request, status, secondary_status, failure_reason, creation_time, "
    "training_start_time, training_end_time, last_modified_time, final_metrics, stop_requested"
)


@dataclass(frozen=True)
class ListQuery:
    name_contains: str | None = None
    status_equals: str | None = None
    creation_after: float | None = None
    creation_before: float | None = None
    modified_after: float | None = None
    modified_before: float | None = None
    sort_by: str = "CreationTime"
    descending: bool = True
    limit: int = 10
    after_key: tuple[Any, ...] | None = None


_SORT_COLUMNS = {
    "CreationTime": ("creation_time", "name"),
    "Name": ("name",),
    "Status": ("status", "creation_time", "name"),
}


def _job_from_row(row: sqlite3.Row, transitions: list[Transition]) -> TrainingJob:
    return TrainingJob(
        name=row["name"],
        arn=row["arn"],
        request=json.loads(row["request"]),
        status=TrainingJobStatus(row["status"]),
        secondary_status=SecondaryStatus(row["secondary_status"]),
        creation_time=row["creation_time"],
        last_modified_time=row["last_modified_time"],
        transitions=transitions,
        training_start_time=row["training_start_time"],
        training_end_time=row["training_end_time"],
        failure_reason=row["failure_reason"],
        final_metrics=json.loads(row["final_metrics"]),
        stop_requested=bool(row["stop_requested"]),
    )


def _transitions(conn: sqlite3.Connection, name: str) -> list[Transition]:
    rows = conn.execute(
        "SELECT status, start_time, end_time, message FROM transitions WHERE job = ? ORDER BY idx",
        (name,),
    ).fetchall()
    return [Transition(SecondaryStatus(r[0]), r[1], r[2], r[3]) for r in rows]


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- jobs -------------------------------------------------------------------------------

    def insert(self, job: TrainingJob, schedule: Schedule) -> None:
        try:
            with self.db.write() as conn:
                conn.execute(
                    f"INSERT INTO jobs ({_JOB_COLUMNS}, queue_state, lease_owner, lease_expires,"
                    " attempts, resources) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        job.name,
                        job.arn,
                        json.dumps(job.request, separators=(",", ":")),
                        job.status.value,
                        job.secondary_status.value,
                        job.failure_reason,
                        job.creation_time,
                        job.training_start_time,
                        job.training_end_time,
                        job.last_modified_time,
                        json.dumps(job.final_metrics),
                        int(job.stop_requested),
                        schedule.queue_state.value,
                        schedule.lease_owner,
                        schedule.lease_expires,
                        schedule.attempts,
                        schedule.allocation.to_json() if schedule.allocation else None,
                    ),
                )
                self._write_transitions(conn, job.name, job.transitions, start=0)
        except sqlite3.IntegrityError as exc:
            raise DuplicateJob(job.name) from exc

    def get(self, name: str) -> TrainingJob | None:
        conn = self.db.read()
        row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return _job_from_row(row, _transitions(conn, name))

    def exists(self, name: str) -> bool:
        row = self.db.read().execute("SELECT 1 FROM jobs WHERE name = ?", (name,)).fetchone()
        return row is not None

    def page(self, query: ListQuery) -> tuple[list[TrainingJob], tuple[Any, ...] | None]:
        """One page of jobs and the sort key of its last row (None when nothing follows).

        The status filter is applied after the page is cut, as SageMaker documents for
        StatusEquals with MaxResults: pages can be short, even empty, while a token continues.
        """
        where: list[str] = []
        args: list[Any] = []
        if query.name_contains:
            where.append("instr(lower(name), ?) > 0")
            args.append(query.name_contains.lower())
        for column, op, value in (
            ("creation_time", ">", query.creation_after),
            ("creation_time", "<", query.creation_before),
            ("last_modified_time", ">", query.modified_after),
            ("last_modified_time", "<", query.modified_before),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                args.append(value)
        columns = _SORT_COLUMNS[query.sort_by]
        direction = "DESC" if query.descending else "ASC"
        if query.after_key is not None:
            op = "<" if query.descending else ">"
            where.append(f"({', '.join(columns)}) {op} ({', '.join('?' * len(columns))})")
            args.extend(query.after_key)
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY " + ", ".join(f"{c} {direction}" for c in columns)
        sql += " LIMIT ?"
        args.append(query.limit + 1)
        conn = self.db.read()
        rows = conn.execute(sql, args).fetchall()
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        next_key = tuple(rows[-1][c] for c in columns) if more and rows else None
        jobs = [
            _job_from_row(row, [])
            for row in rows
            if query.status_equals is None or row["status"] == query.status_equals
        ]
        return jobs, next_key

    def count(self) -> int:
        return int(self.db.read().execute("SELECT COUNT(*) FROM jobs").fetchone()[0])

    def delete(self, name: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM jobs WHERE name = ?", (name,))

    # -- the one status mutator ---------------------------------------------------------------

    def transition(
        self,
        name: str,
        new: SecondaryStatus,
        message: str,
        *,
        failure_reason: str | None = None,
        request_stop: bool = False,
        only_from: Sequence[SecondaryStatus] | None = None,
        now: float | None = None,
    ) -> TrainingJob:
        """Move a job to ``new`` and record the transition; returns the job as stored.

        ``only_from`` makes the move conditional (compare-and-set): when the job is in another
        status the stored job is returned unchanged. Raises ``TransitionNotAllowed`` for a move
        the state machine forbids and ``UnknownJob`` for a missing job.
        """
        with self.db.write() as conn:
            row = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise UnknownJob(name)
            job = _job_from_row(row, _transitions(conn, name))
            if only_from is not None and job.secondary_status not in only_from:
                return job
            moved = plan_transition(
                job, new, message, time.time() if now is None else now, failure_reason
            )
            conn.execute(
                "UPDATE jobs SET status = ?, secondary_status = ?, failure_reason = ?,"
                " training_start_time = ?, training_end_time = ?, last_modified_time = ?,"
                " stop_requested = stop_requested OR ?,"
                # A claimed job keeps its claim (and the capacity it holds) past its end, until
                # its worker has removed its containers and releases it.
                " queue_state = CASE WHEN ? AND queue_state != 'claimed' THEN 'done'"
                " ELSE queue_state END WHERE name = ?",
                (
                    moved.status.value,
                    moved.secondary_status.value,
                    moved.failure_reason,
                    moved.training_start_time,
                    moved.training_end_time,
                    moved.last_modified_time,
                    int(request_stop),
                    int(moved.is_terminal),
                    name,
                ),
            )
            # Transitions only ever change at the tail: rewrite the last old one, append the rest.
            keep = max(len(job.transitions) - 1, 0)
            conn.execute("DELETE FROM transitions WHERE job = ? AND idx >= ?", (name, keep))
            self._write_transitions(conn, name, moved.transitions[keep:], start=keep)
        if request_stop:
            return dataclasses.replace(moved, stop_requested=True)
        return moved

    @staticmethod
    def _write_transitions(
        conn: sqlite3.Connection, name: str, transitions: Sequence[Transition], start: int
    ) -> None:
        conn.executemany(
            "INSERT INTO transitions (job, idx, status, start_time, end_time, message)"
            " VALUES (?,?,?,?,?,?)",
            [
                (name, start + i, t.status.value, t.start_time, t.end_time, t.message)
                for i, t in enumerate(transitions)
            ],
        )

    def stop_requested(self, name: str) -> bool:
        row = (
            self.db.read()
            .execute("SELECT stop_requested FROM jobs WHERE name = ?", (name,))
            .fetchone()
        )
        return bool(row and row[0])

    # -- interruptions and updates -------------------------------------------------------------

    def requests(self, name: str) -> tuple[bool, bool]:
        """(stop requested, interruption requested), in one read: what a worker polls."""
        row = (
            self.db.read()
            .execute("SELECT stop_requested, interrupt_requested FROM jobs WHERE name = ?", (name,))
            .fetchone()
        )
        return (bool(row[0]), bool(row[1])) if row else (False, False)

    def request_interrupt(self, name: str, only_from: Sequence[SecondaryStatus]) -> TrainingJob:
        """Ask the job's worker to interrupt it, if it is in one of ``only_from`` (checked in the
        same transaction); returns the job as it was."""
        with self.db.write() as conn:
            row = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise UnknownJob(name)
            job = _job_from_row(row, _transitions(conn, name))
            if job.secondary_status in only_from and not job.stop_requested:
                conn.execute("UPDATE jobs SET interrupt_requested = 1 WHERE name = ?", (name,))
            return job

    def next_attempt(self, name: str) -> None:
        """The job starts again on fresh hosts: the interruption asked for is done, and the last
        attempt's SIGTERM moment no longer applies."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE jobs SET interrupt_requested = 0, terminated_at = NULL,"
                " terminate_reason = NULL WHERE name = ?",
                (name,),
            )

    def update_request(
        self, name: str, change: Callable[[TrainingJob], CreateTrainingJobRequest]
    ) -> TrainingJob:
        """Replace the job's stored request with ``change(job)`` (it may raise to refuse), read
        and written in one transaction."""
        with self.db.write() as conn:
            row = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                raise UnknownJob(name)
            job = _job_from_row(row, _transitions(conn, name))
            request = change(job)
            now = round(time.time(), 3)
            conn.execute(
                "UPDATE jobs SET request = ?, last_modified_time = ? WHERE name = ?",
                (json.dumps(request, separators=(",", ":")), now, name),
            )
            return dataclasses.replace(job, request=request, last_modified_time=now)

    # -- scheduling ----------------------------------------------------------------------------

    _SCHEDULE_COLUMNS = (
        "name, queue_state, lease_owner, lease_expires, attempts, resources, terminated_at,"
        " terminate_reason"
    )

    def schedule(self, name: str) -> Schedule | None:
        row = (
            self.db.read()
            .execute(f"SELECT {self._SCHEDULE_COLUMNS} FROM jobs WHERE name = ?", (name,))
            .fetchone()
        )
        return _schedule_from_row(row) if row else None

    def queued(self, limit: int = 100) -> list[Schedule]:
        rows = self.db.read().execute(
            f"SELECT {self._SCHEDULE_COLUMNS} FROM jobs"
            " WHERE queue_state = 'queued' ORDER BY creation_time, name LIMIT ?",
            (limit,),
        )
        return [_schedule_from_row(r) for r in rows]

    def allocate(
        self,
        name: str,
        owner: str,
        lease_seconds: float,
        plan: Callable[[list[Allocation]], Allocation | None],
        claim: bool,
    ) -> Allocation | bool | None:
        """Give a job its resources, in one transaction with reading what every other claimed
        job holds. ``claim``: the job must be queued, and is claimed for ``owner`` with the
        allocation (a server admitting it); otherwise ``owner`` must hold it already
        (``trainforge run``). ``plan`` gets the other jobs' allocations and returns this one's, or
        None when it must wait. Returns the allocation, None to wait, or False when the job is
        not (any more) this owner's to allocate."""
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT queue_state, lease_owner FROM jobs WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                return False
            if claim and row[0] != QueueState.QUEUED.value:
                return False
            if not claim and (row[0] != QueueState.CLAIMED.value or row[1] != owner):
                return False
            others = conn.execute(
                "SELECT resources FROM jobs WHERE queue_state = 'claimed' AND name != ?"
                " AND resources IS NOT NULL",
                (name,),
            ).fetchall()
            in_use = [a for r in others if (a := Allocation.from_json(r[0])) is not None]
            allocation = plan(in_use)
            if allocation is None:
                return None
            conn.execute(
                "UPDATE jobs SET queue_state = 'claimed', lease_owner = ?,"
                " lease_expires = ?, attempts = attempts + ?, resources = ? WHERE name = ?",
                (owner, time.time() + lease_seconds, int(claim), allocation.to_json(), name),
            )
            return allocation

    def set_terminating(self, name: str, ending: str, at: float) -> None:
        """The job's containers got SIGTERM at ``at`` for ``ending`` (kept for a takeover)."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE jobs SET terminated_at = COALESCE(terminated_at, ?),"
                " terminate_reason = COALESCE(terminate_reason, ?) WHERE name = ?",
                (at, ending, name),
            )

    def take_over(self, name: str, owner: str, lease_seconds: float, previous: str | None) -> bool:
        """Take a claimed job from ``previous`` (a worker that died); False if it changed hands
        or finished meanwhile."""
        with self.db.write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET lease_owner = ?, lease_expires = ?, attempts = attempts + 1"
                " WHERE name = ? AND queue_state = 'claimed' AND lease_owner IS ?",
                (owner, time.time() + lease_seconds, name, previous),
            )
            return cur.rowcount == 1

    def heartbeat(self, owner: str, names: Iterable[str], lease_seconds: float) -> None:
        names = list(names)
        if not names:
            return
        expires = time.time() + lease_seconds
        with self.db.write() as conn:
            conn.executemany(
                "UPDATE jobs SET lease_expires = ? WHERE name = ? AND lease_owner = ?",
                [(expires, n, owner) for n in names],
            )

    def release(self, name: str, owner: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE jobs SET queue_state = 'done', lease_expires = NULL"
                " WHERE name = ? AND lease_owner = ?",
                (name, owner),
            )

    def claimed(self) -> list[Schedule]:
        rows = self.db.read().execute(
            f"SELECT {self._SCHEDULE_COLUMNS} FROM jobs"
            " WHERE queue_state = 'claimed' ORDER BY creation_time"
        )
        return [_schedule_from_row(r) for r in rows]

    def allocations(self) -> list[Allocation]:
        """What every claimed job holds."""
        rows = self.db.read().execute(
            "SELECT resources FROM jobs WHERE queue_state = 'claimed' AND resources IS NOT NULL"
        )
        return [a for r in rows if (a := Allocation.from_json(r[0])) is not None]

    # -- hosts -----------------------------------------------------------------------------------

    def save_host(self, ref: HostRef) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO containers (job, host, container_id, stream,"
                " log_cursor_ns) VALUES (?,?,'',?,?)",
                (ref.job, ref.host, ref.stream, ref.log_cursor_ns),
            )

    def hosts(self, job: str) -> list[HostRef]:
        rows = self.db.read().execute(
            "SELECT job, host, stream, log_cursor_ns FROM containers WHERE job = ? ORDER BY host",
            (job,),
        )
        return [HostRef(r[0], r[1], r[2], r[3]) for r in rows]

    # -- tags ----------------------------------------------------------------------------------

    def add_tags(self, arn: str, tags: Sequence[tuple[str, str]]) -> None:
        with self.db.write() as conn:
            conn.executemany(
                "INSERT INTO tags (arn, key, value) VALUES (?,?,?)"
                " ON CONFLICT (arn, key) DO UPDATE SET value = excluded.value",
                [(arn, k, v) for k, v in tags],
            )

    def tags(self, arn: str) -> list[tuple[str, str]]:
        rows = self.db.read().execute(
            "SELECT key, value FROM tags WHERE arn = ? ORDER BY rowid", (arn,)
        )
        return [(r[0], r[1]) for r in rows]

    def delete_tags(self, arn: str, keys: Sequence[str]) -> None:
        with self.db.write() as conn:
            conn.executemany("DELETE FROM tags WHERE arn = ? AND key = ?", [(arn, k) for k in keys])


def _schedule_from_row(row: sqlite3.Row) -> Schedule:
    return Schedule(
        row[0],
        QueueState(row[1]),
        row[2],
        row[3],
        row[4],
        Allocation.from_json(row[5]),
        row[6],
        row[7],
    )

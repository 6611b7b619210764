"""The SQLite database under TRAINFORGE_HOME: connections, transactions and schema migrations.

Several processes share one database (``trainforge run``, ``trainforge serve``, ``trainforge
list``), so every write is a short ``BEGIN IMMEDIATE`` transaction, and the journal is WAL: a
committed write survives a crash of any of those processes. Each thread gets its own connection.
This module knows nothing of jobs; the repositories beside it do.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trainforge.errors import StoreFull
from trainforge.store.migrations import MIGRATIONS


def _is_full(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.migrate()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL with WAL keeps every committed transaction across a process crash; only a power
        # loss can drop the last ones. FULL would fsync on every log batch for nothing more here.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; committed on success, rolled back on any exception. A full
        disk raises ``StoreFull``: nothing was written, and the caller may try again later."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreFull(f"the job store at {self.path} cannot grow: {exc}") from exc
            raise

    def read(self) -> sqlite3.Connection:
        return self.connection()

    def migrate(self) -> None:
        conn = self.connection()
        # A current store is only read: a server must start on a full disk.
        if self._current_version(conn) >= MIGRATIONS[-1][0]:
            return
        conn.execute("BEGIN EXCLUSIVE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for version, script in MIGRATIONS:
                if version <= current:
                    continue
                for statement in script.split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    def _current_version(conn: sqlite3.Connection) -> int:
        try:
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0] or 0)

    def schema_version(self) -> int:
        row = self.read().execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

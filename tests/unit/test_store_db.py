"""store.db: migrations on a real SQLite file, re-opening, and write transactions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from trainforge.store import db as db_module
from trainforge.store.db import Database
from trainforge.store.migrations import MIGRATIONS

TABLES = {
    "containers",
    "jobs",
    "log_events",
    "log_streams",
    "schema_version",
    "tags",
    "transitions",
}
LATEST = MIGRATIONS[-1][0]


def table_names(db: Database) -> set[str]:
    rows = db.read().execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


def test_migrates_from_scratch(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "trainforge.db"
    db = Database(path)
    try:
        assert path.is_file()
        assert db.schema_version() == LATEST
        assert [v for v, _ in MIGRATIONS] == list(range(1, LATEST + 1))
        assert table_names(db) >= TABLES
        indexes = {
            r[0]
            for r in db.read().execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            if not r[0].startswith("sqlite_autoindex")
        }
        assert indexes >= {"jobs_by_creation", "jobs_by_queue", "log_events_by_stream"}
    finally:
        db.close()


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "trainforge.db"
    first = Database(path)
    with first.write() as conn:
        conn.execute(
            "INSERT INTO tags (arn, key, value) VALUES ('arn:x', 'k', 'v')",
        )
    first.close()
    second = Database(path)
    try:
        assert second.schema_version() == LATEST
        versions = second.read().execute("SELECT version FROM schema_version").fetchall()
        assert [r[0] for r in versions] == list(range(1, LATEST + 1))
        assert [tuple(r) for r in second.read().execute("SELECT arn, key, value FROM tags")] == [
            ("arn:x", "k", "v")
        ]
    finally:
        second.close()


def test_an_older_database_is_brought_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trainforge.db"
    monkeypatch.setattr(db_module, "MIGRATIONS", MIGRATIONS[:1])
    old = Database(path)
    assert old.schema_version() == 1
    with old.write() as conn:
        conn.execute("INSERT INTO tags (arn, key, value) VALUES ('arn:x', 'k', 'v')")
    old.close()
    monkeypatch.setattr(db_module, "MIGRATIONS", MIGRATIONS)
    new = Database(path)
    try:
        assert new.schema_version() == LATEST
        versions = new.read().execute("SELECT version FROM schema_version").fetchall()
        assert [r[0] for r in versions] == list(range(1, LATEST + 1))
        assert [tuple(r) for r in new.read().execute("SELECT key FROM tags")] == [("k",)]
    finally:
        new.close()


def test_connection_settings(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db")
    try:
        conn = db.read()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
        assert db.connection() is conn
    finally:
        db.close()


def test_write_rolls_back_on_error(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db")
    try:
        with pytest.raises(RuntimeError), db.write() as conn:
            conn.execute("INSERT INTO tags (arn, key, value) VALUES ('a', 'k', 'v')")
            raise RuntimeError("boom")
        assert db.read().execute("SELECT COUNT(*) FROM tags").fetchone()[0] == 0
        with db.write() as conn:
            conn.execute("INSERT INTO tags (arn, key, value) VALUES ('a', 'k', 'v')")
        assert db.read().execute("SELECT COUNT(*) FROM tags").fetchone()[0] == 1
    finally:
        db.close()


def test_committed_writes_are_seen_by_another_database_object(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    writer = Database(path)
    reader = Database(path)
    try:
        with writer.write() as conn:
            conn.execute("INSERT INTO tags (arn, key, value) VALUES ('a', 'k', 'v')")
        assert reader.read().execute("SELECT value FROM tags").fetchone()[0] == "v"
    finally:
        writer.close()
        reader.close()


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db")
    try:
        with pytest.raises(sqlite3.IntegrityError), db.write() as conn:
            conn.execute(
                "INSERT INTO transitions (job, idx, status, start_time, message)"
                " VALUES ('missing', 0, 'Starting', 1.0, 'x')"
            )
    finally:
        db.close()

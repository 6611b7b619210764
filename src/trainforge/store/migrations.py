"""Schema migrations, in order. A released step is never edited: a change is a new step.

Times are epoch seconds (REAL) for job records and epoch milliseconds (INTEGER) for log events,
as the two APIs carry them.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
CREATE TABLE jobs (
    name TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    request TEXT NOT NULL,
    status TEXT NOT NULL,
    secondary_status TEXT NOT NULL,
    failure_reason TEXT,
    creation_time REAL NOT NULL,
    training_start_time REAL,
    training_end_time REAL,
    last_modified_time REAL NOT NULL,
    final_metrics TEXT NOT NULL DEFAULT '[]',
    stop_requested INTEGER NOT NULL DEFAULT 0,
    queue_state TEXT NOT NULL,
    lease_owner TEXT,
    lease_expires REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    resources TEXT
);
CREATE INDEX jobs_by_creation ON jobs (creation_time, name);
CREATE INDEX jobs_by_queue ON jobs (queue_state, creation_time);
CREATE TABLE transitions (
    job TEXT NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    status TEXT NOT NULL,
    start_time REAL NOT NULL,
    end_time REAL,
    message TEXT NOT NULL,
    PRIMARY KEY (job, idx)
);
CREATE TABLE tags (
    arn TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (arn, key)
);
CREATE TABLE containers (
    job TEXT NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    host TEXT NOT NULL,
    container_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    log_cursor_ns INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, host)
);
CREATE TABLE log_streams (
    id INTEGER PRIMARY KEY,
    log_group TEXT NOT NULL,
    name TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    first_event INTEGER,
    last_event INTEGER,
    last_ingestion INTEGER,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (log_group, name)
);
CREATE TABLE log_events (
    id INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL REFERENCES log_streams (id) ON DELETE CASCADE,
    timestamp INTEGER NOT NULL,
    ingestion_time INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX log_events_by_stream ON log_events (stream_id, id)
""",
    ),
    (
        2,
        """
CREATE TABLE image_probes (
    image_id TEXT PRIMARY KEY,
    entries_under TEXT NOT NULL,
    on_path INTEGER NOT NULL,
    checked_at REAL NOT NULL
)
""",
    ),
    (
        3,
        """
ALTER TABLE jobs ADD COLUMN terminated_at REAL;
ALTER TABLE jobs ADD COLUMN terminate_reason TEXT
""",
    ),
    (
        4,
        """
CREATE TABLE metric_points (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    metric TEXT NOT NULL,
    source TEXT NOT NULL,
    host TEXT NOT NULL,
    timestamp REAL NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX metric_points_series ON metric_points (job, metric, source, timestamp)
""",
    ),
    (
        5,
        """
ALTER TABLE jobs ADD COLUMN interrupt_requested INTEGER NOT NULL DEFAULT 0
""",
    ),
]

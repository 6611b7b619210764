"""Durable records in SQLite: jobs and their transitions, tags, leases, containers, log events,
image probes; the schema and its migrations."""

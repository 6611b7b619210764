"""Who holds a job: worker identities, and whether the worker behind one is still alive.

An owner is ``<kind>:<hostname>:<pid>:<process start time>``. A lease normally ends by expiring
(its worker stopped heartbeating); when the owner ran on this very host and its process is gone,
the lease is dead at once, so a server restarted after ``kill -9`` takes its jobs back without
waiting for the lease to run out. The start time guards against a reused pid.
"""

from __future__ import annotations

import os
import socket


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Field 22 of /proc/<pid>/stat (starttime), counted after the command name.
    return fields[19] if len(fields) > 19 else None


def owner_id(kind: str) -> str:
    pid = os.getpid()
    return f"{kind}:{socket.gethostname()}:{pid}:{_start_time(pid) or '0'}"


def owner_is_dead(owner: str | None) -> bool:
    """True only when the owner certainly ran on this host and its process no longer exists."""
    if not owner:
        return True
    parts = owner.split(":")
    if len(parts) != 4 or parts[1] != socket.gethostname():
        return False
    try:
        pid = int(parts[2])
    except ValueError:
        return False
    started = _start_time(pid)
    return started is None or started != parts[3]

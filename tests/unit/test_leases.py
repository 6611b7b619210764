"""scheduler.leases: worker identities and whether the process behind one is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from trainforge.scheduler.leases import owner_id, owner_is_dead


def start_time_of(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
        return fh.read().rsplit(")", 1)[1].split()[19]


def test_owner_id_format() -> None:
    owner = owner_id("server")
    kind, host, pid, started = owner.split(":")
    assert kind == "server"
    assert host == socket.gethostname()
    assert pid == str(os.getpid())
    assert started == start_time_of(os.getpid())
    assert started.isdigit()
    assert owner_id("server") == owner


def test_this_process_is_alive() -> None:
    assert owner_is_dead(owner_id("run")) is False


def test_a_finished_process_is_dead() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(child.stdout)
    owner = f"run:{socket.gethostname()}:{pid}:12345"
    assert owner_is_dead(owner) is True


def test_a_reused_pid_is_dead() -> None:
    owner = f"run:{socket.gethostname()}:{os.getpid()}:{int(start_time_of(os.getpid())) + 1}"
    assert owner_is_dead(owner) is True


def test_an_owner_on_another_host_is_never_declared_dead() -> None:
    assert owner_is_dead(f"run:not-{socket.gethostname()}:999999999:1") is False


def test_unreadable_owners() -> None:
    assert owner_is_dead(None) is True
    assert owner_is_dead("") is True
    assert owner_is_dead("garbage") is False
    assert owner_is_dead(f"run:{socket.gethostname()}:notapid:1") is False
    assert owner_is_dead(f"run:{socket.gethostname()}:1:2:3") is False

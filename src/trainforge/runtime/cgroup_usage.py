"""A container's use of its machine read from the machine's cgroup tree, where an engine cannot
be asked (a Swarm manager cannot read other nodes' containers): the agent beside a host mounts
the node's ``/sys/fs/cgroup`` read-only and reads the host's container by its id.

Knows cgroup v2 and v1, with Docker's ``cgroupfs`` (``docker/<id>``) and ``systemd``
(``system.slice/docker-<id>.scope``) layouts, and finds a container a daemon's
``--cgroup-parent`` put elsewhere a few levels down. Reads files only; starts nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from trainforge.engines.base import HostUsage

_SEARCH_DEPTH = 3
_found: dict[tuple[Path, str], Path] = {}


def _group(root: Path, container_id: str) -> Path | None:
    """The container's directory under a controller's ``root``: where Docker puts it by default,
    else the first match within a few levels (a daemon's ``--cgroup-parent`` moves it)."""
    known = _found.get((root, container_id))
    if known is not None and known.is_dir():
        return known
    names = {container_id, f"docker-{container_id}.scope"}
    level = [root / "docker", root / "system.slice", root]
    for _ in range(_SEARCH_DEPTH):
        deeper = []
        for directory in level:
            for name in names:
                if (directory / name).is_dir():
                    _found[(root, container_id)] = directory / name
                    return directory / name
            try:
                deeper += [Path(e.path) for e in os.scandir(directory) if e.is_dir()]
            except OSError:
                continue
        level = deeper
    return None


def _first_dir(roots: list[Path], container_id: str) -> Path | None:
    for root in roots:
        if root.is_dir():
            found = _group(root, container_id)
            if found is not None:
                return found
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stat(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _machine_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cgroup_usage(root: Path, container_id: str) -> HostUsage | None:
    """The container's CPU time and memory now, or None when its cgroup is not found (it
    ended, or the layout is one this does not know)."""
    now = time.time()
    if (root / "cgroup.controllers").exists():  # v2: one tree
        group = _first_dir([root], container_id)
        if group is None:
            return None
        cpu = _stat(group / "cpu.stat", "usage_usec") / 1e6
        memory = _read_int(group / "memory.current")
        limit = _read_int(group / "memory.max")  # "max" (no limit) reads as None
        cache = _stat(group / "memory.stat", "inactive_file")
    else:  # v1: a tree per controller
        cpu_group = _first_dir([root / "cpu,cpuacct", root / "cpuacct"], container_id)
        mem_group = _first_dir([root / "memory"], container_id)
        if cpu_group is None or mem_group is None:
            return None
        cpu = (_read_int(cpu_group / "cpuacct.usage") or 0) / 1e9
        memory = _read_int(mem_group / "memory.usage_in_bytes")
        limit = _read_int(mem_group / "memory.limit_in_bytes")
        cache = _stat(mem_group / "memory.stat", "total_inactive_file")
    if memory is None:
        return None
    machine = _machine_memory()
    if limit is None or (machine and limit > machine):
        limit = machine  # no limit: the machine's memory is the bound, as `docker stats` says
    return HostUsage(now, cpu, max(memory - cache, 0), limit)

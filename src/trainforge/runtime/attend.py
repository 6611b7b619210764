"""What runs next to a host's container while it trains: the moving parts of the contract that
cannot wait for the container to end. Each is a ``Component`` (the synced directories of
``runtime.sync``: checkpoints, TensorBoard, debugger and profiler output; the Pipe-mode channel
feeders of ``runtime.pipes``), and a ``HostAttendant`` runs a host's components in threads from
the moment the host starts until every host of the job has ended.

On one machine the attendants run in the server's process (``LocalDataPlane.attend``); on a
cluster the agent runs them on the host's node (``python -m trainforge.runtime.agent attend``).
This module only runs components; it knows nothing of engines or of what a component does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.sync import host_syncs
from trainforge.runtime.workspace import HostWorkspace, Workspace
from trainforge.storage.base import Storage

log = logging.getLogger("trainforge.runtime")


class Component(Protocol):
    @property
    def name(self) -> str: ...

    def run(self, stopping: threading.Event) -> list[str]:
        """Do the component's work until ``stopping`` is set, then its last round of work (a
        final flush), and return warnings for the job's log. Must return soon after
        ``stopping`` is set."""
        ...


def needs_attending(spec: JobSpec) -> bool:
    """Whether anything runs beside ``spec``'s hosts (decided without touching their trees)."""
    return bool(spec.synced) or any(c.input_mode == "Pipe" for c in spec.channels)


def host_components(
    spec: JobSpec, workspace: Workspace, hw: HostWorkspace, storage: Storage
) -> list[Component]:
    """Everything that attends ``hw``'s host while it runs."""
    components: list[Component] = []
    components += host_syncs(spec, workspace, hw, storage)
    if any(c.input_mode == "Pipe" for c in spec.channels):
        # Loaded for the jobs that read a Pipe: `trainforge run` of the others starts sooner.
        from trainforge.runtime.pipes import host_pipes

        components += host_pipes(spec, workspace, hw, storage)
    return components


class Attendance(Protocol):
    def stop(self) -> list[str]:
        """Every host has ended: stop attending them; warnings for the job's log."""
        ...


class LocalAttendance:
    """The attendants of a job's hosts, in this process."""

    def __init__(self, attendants: Sequence[HostAttendant]) -> None:
        self._attendants = [a.start() for a in attendants if a]

    def stop(self) -> list[str]:
        warnings: list[str] = []
        for attendant in self._attendants:
            warnings += attendant.stop()
        return warnings


class HostAttendant:
    def __init__(self, host: str, components: Sequence[Component]) -> None:
        self.host = host
        self._components = list(components)
        self._stopping = threading.Event()
        self._warnings: list[str] = []
        self._threads = [
            threading.Thread(
                target=self._run, args=(c,), name=f"attend-{host}-{c.name}", daemon=True
            )
            for c in self._components
        ]

    def __bool__(self) -> bool:
        return bool(self._components)

    def start(self) -> HostAttendant:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self, component: Component) -> None:
        try:
            self._warnings += component.run(self._stopping)
        except Exception as exc:  # a component's failure must not end the job
            log.exception("%s: %s failed", self.host, component.name)
            self._warnings.append(f"{self.host}: {component.name} failed: {exc}")

    def stop(self, timeout: float = 600.0) -> list[str]:
        """Stop every component, wait for their last round (bounded by ``timeout``), and return
        their warnings."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                what = thread.name.split("-", 2)[-1]
                self._warnings.append(f"{self.host}: {what} did not finish in {timeout:.0f} s")
        return list(self._warnings)

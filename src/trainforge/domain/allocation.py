"""What a job was given to run on: per host, the node it runs on and its limits (vCPUs, memory,
specific GPUs). Made once when the job is admitted, kept with its claim in the store (so every
worker sharing a home sees what is taken), and handed to the engine as each container's limits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_MiB = 1 << 20


@dataclass(frozen=True)
class HostAllocation:
    host: str
    instance_type: str
    node: str
    cpus: float
    memory_mib: int
    gpu_ids: tuple[str, ...] = ()

    @property
    def gpus(self) -> int:
        return len(self.gpu_ids)

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * _MiB

    @property
    def shm_bytes(self) -> int:
        # Half the memory: Docker's default of 64 MiB breaks PyTorch data loaders.
        return self.memory_mib * _MiB // 2


@dataclass(frozen=True)
class Allocation:
    hosts: tuple[HostAllocation, ...]
    warnings: tuple[str, ...] = ()

    def host(self, name: str) -> HostAllocation | None:
        return next((h for h in self.hosts if h.host == name), None)

    def on_node(self, node: str) -> list[HostAllocation]:
        return [h for h in self.hosts if h.node == node]

    def to_json(self) -> str:
        return json.dumps(
            {
                "hosts": [
                    {
                        "host": h.host,
                        "instance_type": h.instance_type,
                        "node": h.node,
                        "cpus": h.cpus,
                        "memory_mib": h.memory_mib,
                        "gpu_ids": list(h.gpu_ids),
                    }
                    for h in self.hosts
                ],
                "warnings": list(self.warnings),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> Allocation | None:
        """None for an absent allocation, or one written by an older trainforge."""
        if not text:
            return None
        try:
            data: Any = json.loads(text)
            hosts = tuple(
                HostAllocation(
                    host=str(h["host"]),
                    instance_type=str(h["instance_type"]),
                    node=str(h["node"]),
                    cpus=float(h["cpus"]),
                    memory_mib=int(h["memory_mib"]),
                    gpu_ids=tuple(str(g) for g in h.get("gpu_ids") or ()),
                )
                for h in data["hosts"]
            )
            return cls(hosts, tuple(str(w) for w in data.get("warnings") or ()))
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class Node:
    """A machine hosts can run on, and what it has to give (the whole machine, not what is free).
    A single-machine engine has one node."""

    name: str
    cpus: float
    memory_mib: int
    gpu_ids: tuple[str, ...] = ()

"""The hosts of a training job, read once from its request: ``algo-1 … algo-N`` in request order,
numbered across instance groups, each with its instance type and group (spec §1.5, §8). Without
``InstanceGroups`` the one group is ``homogeneousCluster``. Every layer that needs a job's hosts
asks ``hosts_of``; nothing else reads ResourceConfig for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainforge.domain import contract


@dataclass(frozen=True)
class Host:
    name: str
    index: int
    instance_type: str
    group: str


@dataclass(frozen=True)
class InstanceGroup:
    name: str
    instance_type: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Hosts:
    groups: tuple[InstanceGroup, ...]
    hosts: tuple[Host, ...]

    def __len__(self) -> int:
        return len(self.hosts)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.hosts)


def hosts_of(request: Mapping[str, Any]) -> Hosts:
    resource = request.get("ResourceConfig") or {}
    raw_groups = resource.get("InstanceGroups")
    if raw_groups:
        specs = [
            (str(g["InstanceGroupName"]), str(g["InstanceType"]), int(g["InstanceCount"]))
            for g in raw_groups
        ]
    else:
        specs = [
            (
                contract.HOMOGENEOUS_GROUP,
                str(resource.get("InstanceType") or ""),
                int(resource.get("InstanceCount", 1) or 1),
            )
        ]
    groups = []
    hosts = []
    index = 1
    for group_name, instance_type, count in specs:
        names = []
        for _ in range(count):
            name = contract.host_name(index)
            hosts.append(Host(name, index, instance_type, group_name))
            names.append(name)
            index += 1
        groups.append(InstanceGroup(group_name, instance_type, tuple(names)))
    return Hosts(tuple(groups), tuple(hosts))

"""What a job asks of the machine and whether it fits (spec §12.3).

Each host of a job asks for its instance type's vCPUs, memory and GPUs; the job's hosts share
this one machine. By default a job larger than the machine still runs, each host's limits capped
to its share of what the machine has, with a warning; with strict admission such a job is
refused at create time with SageMaker's ResourceLimitExceeded text. A job is admitted when its
hosts fit beside the jobs already running.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trainforge.errors import ResourceLimitExceeded
from trainforge.scheduler.instance_types import resources_for

_MiB = 1 << 20


@dataclass(frozen=True)
class Capacity:
    cpus: float
    memory_mib: int
    gpus: int


@dataclass(frozen=True)
class HostNeed:
    host: str
    instance_type: str
    cpus: float
    memory_mib: int
    gpus: int


@dataclass(frozen=True)
class Allocation:
    """The capped per-host limits of one job, and what it takes from the machine in total."""

    hosts: tuple[HostNeed, ...]
    capped: bool
    warnings: tuple[str, ...]

    @property
    def cpus(self) -> float:
        return sum(h.cpus for h in self.hosts)

    @property
    def memory_mib(self) -> int:
        return sum(h.memory_mib for h in self.hosts)

    @property
    def gpus(self) -> int:
        return sum(h.gpus for h in self.hosts)

    def resources(self, gpu_ids: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
        """The JSON kept with the job's claim and handed to the runtime as container limits.

        Every host gets the same limits (the smallest host's, as SageMaker hosts of one group are
        alike); shared memory is half the memory, where Docker's default of 64 MiB would break
        PyTorch data loaders."""
        first = min(self.hosts, key=lambda h: (h.cpus, h.memory_mib))
        return {
            "cpus": first.cpus,
            "memory_bytes": first.memory_mib * _MiB,
            "shm_bytes": first.memory_mib * _MiB // 2,
            "gpus": first.gpus,
            "gpu_ids": dict(gpu_ids or {}),
            "total_cpus": self.cpus,
            "total_memory_mib": self.memory_mib,
            "total_gpus": self.gpus,
            "instance_types": [h.instance_type for h in self.hosts],
        }


def machine_capacity(
    cpus: float | None = None, memory_mib: int | None = None, gpus: int | None = None
) -> Capacity:
    if memory_mib is None:
        memory_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // _MiB
    return Capacity(
        cpus=float(cpus if cpus is not None else os.cpu_count() or 1),
        memory_mib=int(memory_mib),
        gpus=int(gpus or 0),
    )


def host_needs(request: Mapping[str, Any]) -> list[HostNeed]:
    resource = request.get("ResourceConfig") or {}
    groups = resource.get("InstanceGroups") or [
        {
            "InstanceType": resource.get("InstanceType"),
            "InstanceCount": resource.get("InstanceCount", 1),
        }
    ]
    needs = []
    index = 1
    for group in groups:
        spec = resources_for(str(group["InstanceType"]))
        for _ in range(int(group.get("InstanceCount", 1) or 1)):
            needs.append(
                HostNeed(
                    f"algo-{index}",
                    str(group["InstanceType"]),
                    spec.vcpus,
                    int(spec.memory_gib * 1024),
                    spec.gpus,
                )
            )
            index += 1
    return needs


def instance_limit(instance_type: str, capacity: Capacity) -> int:
    """How many instances of a type this machine holds at once."""
    spec = resources_for(instance_type)
    limits = [capacity.cpus / spec.vcpus, capacity.memory_mib / (spec.memory_gib * 1024)]
    if spec.gpus:
        limits.append(capacity.gpus / spec.gpus)
    return max(0, math.floor(min(limits) + 1e-9))


def refuse_if_never_fits(
    request: Mapping[str, Any], capacity: Capacity, in_use: Iterable[str]
) -> None:
    """Strict admission: ResourceLimitExceeded, in SageMaker's words, for a job that can never
    fit this machine. ``in_use`` lists the instance type of every host running now."""
    needs = host_needs(request)
    fits = (
        sum(n.cpus for n in needs) <= capacity.cpus + 1e-9
        and sum(n.memory_mib for n in needs) <= capacity.memory_mib
        and sum(n.gpus for n in needs) <= capacity.gpus
    )
    if fits:
        return
    counts: dict[str, int] = {}
    for need in needs:
        counts[need.instance_type] = counts.get(need.instance_type, 0) + 1
    running = list(in_use)
    for instance_type, delta in counts.items():
        limit = instance_limit(instance_type, capacity)
        if delta > limit or len(counts) == 1:
            used = sum(1 for t in running if t == instance_type)
            raise ResourceLimitExceeded(
                f"The account-level service limit '{instance_type} for training job usage' is "
                f"{limit} Instances, with current utilization of {used} Instances and a request "
                f"delta of {delta} Instances. Please use AWS Service Quotas to request an increase "
                "for this quota."
            )
    raise ResourceLimitExceeded(
        "The instance groups of this job together need more than this machine has "
        f"({capacity.cpus:g} CPUs, {capacity.memory_mib} MiB, {capacity.gpus} GPUs)."
    )


def allocate(request: Mapping[str, Any], capacity: Capacity) -> Allocation:
    """Per-host limits: the instance type's resources, capped to each host's equal share of the
    machine when the job as a whole is larger than the machine."""
    needs = host_needs(request)
    share = len(needs)
    capped_hosts = []
    warnings = []
    capped = False
    for need in needs:
        cpus = min(need.cpus, capacity.cpus / share)
        memory = min(need.memory_mib, capacity.memory_mib // share)
        gpus = min(need.gpus, capacity.gpus // share)
        if (cpus, memory, gpus) != (need.cpus, need.memory_mib, need.gpus):
            capped = True
        capped_hosts.append(HostNeed(need.host, need.instance_type, cpus, memory, gpus))
    if capped:
        need = needs[0]
        warnings.append(
            f"{need.instance_type} has {need.cpus:g} vCPUs, {need.memory_mib // 1024} GiB and "
            f"{need.gpus} GPUs per host ({len(needs)} host{'s' if len(needs) > 1 else ''}); this "
            f"machine has {capacity.cpus:g} CPUs, {capacity.memory_mib // 1024} GiB and "
            f"{capacity.gpus} GPUs, so each container runs with at most "
            f"{capped_hosts[0].cpus:g} CPUs, {capped_hosts[0].memory_mib} MiB and "
            f"{capped_hosts[0].gpus} GPUs."
        )
    return Allocation(tuple(capped_hosts), capped, tuple(warnings))


def fits(allocation: Allocation, in_use: Iterable[Mapping[str, Any]], capacity: Capacity) -> bool:
    used_cpus = used_memory = used_gpus = 0.0
    for resources in in_use:
        used_cpus += float(resources.get("total_cpus", 0))
        used_memory += float(resources.get("total_memory_mib", 0))
        used_gpus += float(resources.get("total_gpus", 0))
    return (
        used_cpus + allocation.cpus <= capacity.cpus + 1e-9
        and used_memory + allocation.memory_mib <= capacity.memory_mib
        and used_gpus + allocation.gpus <= capacity.gpus
    )


def assign_gpus(
    allocation: Allocation, in_use: Iterable[Mapping[str, Any]], capacity: Capacity
) -> dict[str, list[str]]:
    """Device ids for each host, none shared with a running job."""
    taken = {
        device
        for resources in in_use
        for devices in (resources.get("gpu_ids") or {}).values()
        for device in devices
    }
    free = [str(i) for i in range(capacity.gpus) if str(i) not in taken]
    assigned: dict[str, list[str]] = {}
    for host in allocation.hosts:
        assigned[host.host] = free[: host.gpus]
        free = free[host.gpus :]
    return assigned

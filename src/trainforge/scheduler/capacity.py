"""Placement: which node each host of a job runs on, and with what limits (spec §12.3).

Each host asks for its own instance type's vCPUs, memory and GPUs. On one machine (``spread``
false) every host of a job shares the one node; a job larger than the machine still runs, each
host capped to its equal share of the machine, with a warning. On a cluster (``spread`` true)
each host gets a node of its own, a host is capped to its node's size with a warning, and a host
that asks for GPUs lands only on a node that has that many. A job is placed only when all its
hosts fit beside the allocations already made (``in_use``): all or nothing.

With strict admission a job that can never fit is refused at create time with SageMaker's
ResourceLimitExceeded text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from trainforge.domain.allocation import Allocation, HostAllocation, Node
from trainforge.domain.hosts import Host, Hosts
from trainforge.errors import ResourceLimitExceeded
from trainforge.scheduler.instance_types import resources_for


@dataclass(frozen=True)
class Need:
    host: Host
    cpus: float
    memory_mib: int
    gpus: int


def needs_of(hosts: Hosts) -> list[Need]:
    """What each host's instance type asks for; KeyError for a type the table does not know."""
    needs = []
    for host in hosts.hosts:
        spec = resources_for(host.instance_type)
        needs.append(Need(host, spec.vcpus, int(spec.memory_gib * 1024), spec.gpus))
    return needs


@dataclass
class _Free:
    node: Node
    cpus: float
    memory_mib: int
    gpu_ids: list[str]


def _free(nodes: Sequence[Node], in_use: Iterable[Allocation]) -> dict[str, _Free]:
    free = {n.name: _Free(n, n.cpus, n.memory_mib, list(n.gpu_ids)) for n in nodes}
    for allocation in in_use:
        for host in allocation.hosts:
            item = free.get(host.node)
            if item is None:
                continue
            item.cpus -= host.cpus
            item.memory_mib -= host.memory_mib
            item.gpu_ids = [g for g in item.gpu_ids if g not in host.gpu_ids]
    return free


def plan(
    hosts: Hosts, nodes: Sequence[Node], in_use: Iterable[Allocation], spread: bool
) -> Allocation | None:
    """The allocation of a job that fits now, or None when it must wait."""
    if not nodes:
        return None
    needs = needs_of(hosts)
    free = _free(nodes, in_use)
    if spread:
        return _plan_spread(needs, free)
    return _plan_shared(needs, free[nodes[0].name])


def _plan_shared(needs: list[Need], free: _Free) -> Allocation | None:
    node = free.node
    share = len(needs)
    placed = []
    capped: list[tuple[Need, HostAllocation]] = []
    for need in needs:
        cpus = min(need.cpus, node.cpus / share)
        memory = min(need.memory_mib, node.memory_mib // share)
        gpus = min(need.gpus, len(node.gpu_ids) // share)
        host = HostAllocation(need.host.name, need.host.instance_type, node.name, cpus, memory)
        if (cpus, memory, gpus) != (need.cpus, need.memory_mib, need.gpus):
            capped.append((need, host))
        placed.append((host, gpus))
    total_gpus = sum(g for _, g in placed)
    if (
        sum(h.cpus for h, _ in placed) > free.cpus + 1e-9
        or sum(h.memory_mib for h, _ in placed) > free.memory_mib
        or total_gpus > len(free.gpu_ids)
    ):
        return None
    ids = list(free.gpu_ids)
    hosts = []
    for host, gpus in placed:
        hosts.append(_with_gpus(host, ids[:gpus]))
        ids = ids[gpus:]
    warnings = _cap_warnings(capped, node, len(needs), "this machine", "each container")
    return Allocation(tuple(hosts), warnings)


def _plan_spread(needs: list[Need], free: dict[str, _Free]) -> Allocation | None:
    # GPU hosts first, and each on the node with the fewest GPUs that is enough, so that a
    # CPU host does not take the node a GPU host needs.
    order = sorted(needs, key=lambda n: (-n.gpus, -n.cpus, n.host.index))
    taken: set[str] = set()
    placed: dict[str, HostAllocation] = {}
    capped: list[tuple[Need, HostAllocation]] = []
    for need in order:
        candidates = sorted(
            (f for f in free.values() if f.node.name not in taken),
            key=lambda f: (len(f.node.gpu_ids), f.node.name),
        )
        chosen = None
        for item in candidates:
            cpus = min(need.cpus, item.node.cpus)
            memory = min(need.memory_mib, item.node.memory_mib)
            if (
                len(item.node.gpu_ids) >= need.gpus
                and cpus <= item.cpus + 1e-9
                and memory <= item.memory_mib
                and len(item.gpu_ids) >= need.gpus
            ):
                chosen = item
                host = HostAllocation(
                    need.host.name,
                    need.host.instance_type,
                    item.node.name,
                    cpus,
                    memory,
                    tuple(item.gpu_ids[: need.gpus]),
                )
                if (cpus, memory) != (need.cpus, need.memory_mib):
                    capped.append((need, host))
                break
        if chosen is None:
            return None
        taken.add(chosen.node.name)
        placed[need.host.name] = host
    ordered = tuple(placed[n.host.name] for n in needs)
    warnings: tuple[str, ...] = ()
    if capped:
        where = f"node {capped[0][1].node}"
        warnings = _cap_warnings(capped, None, 1, where, "its container")
    return Allocation(ordered, warnings)


def _with_gpus(host: HostAllocation, ids: list[str]) -> HostAllocation:
    return HostAllocation(
        host.host, host.instance_type, host.node, host.cpus, host.memory_mib, tuple(ids)
    )


def _cap_warnings(
    capped: list[tuple[Need, HostAllocation]],
    node: Node | None,
    count: int,
    where: str,
    who: str,
) -> tuple[str, ...]:
    warnings = []
    seen: set[str] = set()
    for need, host in capped:
        instance_type = need.host.instance_type
        if instance_type in seen:
            continue
        seen.add(instance_type)
        shown = node or Node(host.node, host.cpus, host.memory_mib, host.gpu_ids)
        hosts = f"{count} host{'s' if count > 1 else ''}"
        warnings.append(
            f"{instance_type} has {need.cpus:g} vCPUs, {need.memory_mib // 1024} GiB and "
            f"{need.gpus} GPUs per host ({hosts}); {where} has {shown.cpus:g} CPUs, "
            f"{shown.memory_mib // 1024} GiB and {len(shown.gpu_ids)} GPUs, so {who} runs with "
            f"at most {host.cpus:g} CPUs, {host.memory_mib} MiB and "
            f"{min(need.gpus, len(shown.gpu_ids) // count)} GPUs."
        )
    return tuple(warnings)


def instance_limit(instance_type: str, node: Node) -> int:
    """How many instances of a type one node holds at once."""
    spec = resources_for(instance_type)
    limits = [node.cpus / spec.vcpus, node.memory_mib / (spec.memory_gib * 1024)]
    if spec.gpus:
        limits.append(len(node.gpu_ids) / spec.gpus)
    return max(0, math.floor(min(limits) + 1e-9))


def quota_message(instance_type: str, limit: int, used: int, delta: int) -> str:
    return (
        f"The account-level service limit '{instance_type} for training job usage' is {limit} "
        f"Instances, with current utilization of {used} Instances and a request delta of "
        f"{delta} Instances. Please use AWS Service Quotas to request an increase for this quota."
    )


# The least a host gets on one machine shared by many: below this a "host" is no host at all.
MIN_HOST_CPUS = 0.05
MIN_HOST_MEMORY_MIB = 128


def refuse_if_too_many_hosts(hosts: Hosts, node: Node) -> None:
    """On one machine every job runs, its hosts capped to equal shares, but not one with more
    hosts than the machine can give a share worth having (ResourceLimitExceeded, in SageMaker's
    words, with the number it can)."""
    limit = max(1, min(int(node.cpus / MIN_HOST_CPUS), node.memory_mib // MIN_HOST_MEMORY_MIB))
    if len(hosts) <= limit:
        return
    types = {h.instance_type for h in hosts.hosts}
    if len(types) == 1:
        raise ResourceLimitExceeded(quota_message(types.pop(), limit, 0, len(hosts)))
    raise ResourceLimitExceeded(
        f"The instance groups of this job have {len(hosts)} hosts; this machine holds at most "
        f"{limit} ({node.cpus:g} CPUs, {node.memory_mib} MiB)."
    )


def refuse_if_never_fits(
    hosts: Hosts, nodes: Sequence[Node], in_use: Iterable[str], spread: bool
) -> None:
    """Strict admission: ResourceLimitExceeded, in SageMaker's words, for a job that can never
    fit. ``in_use`` lists the instance type of every host running now."""
    needs = needs_of(hosts)
    counts: dict[str, int] = {}
    for need in needs:
        counts[need.host.instance_type] = counts.get(need.host.instance_type, 0) + 1
    running = list(in_use)
    if spread:
        fits = len(needs) <= len(nodes) and all(
            any(
                n.cpus + 1e-9 >= need.cpus
                and n.memory_mib >= need.memory_mib
                and len(n.gpu_ids) >= need.gpus
                for n in nodes
            )
            for need in needs
        )
        if fits:
            return
        for instance_type, delta in counts.items():
            limit = sum(min(1, instance_limit(instance_type, n)) for n in nodes)
            used = sum(1 for t in running if t == instance_type)
            if delta > limit or len(counts) == 1:
                raise ResourceLimitExceeded(quota_message(instance_type, limit, used, delta))
        raise ResourceLimitExceeded(
            f"The instance groups of this job need {len(needs)} nodes of their own; the cluster "
            f"has {len(nodes)}."
        )
    node = nodes[0]
    fits = (
        sum(n.cpus for n in needs) <= node.cpus + 1e-9
        and sum(n.memory_mib for n in needs) <= node.memory_mib
        and sum(n.gpus for n in needs) <= len(node.gpu_ids)
    )
    if fits:
        return
    for instance_type, delta in counts.items():
        limit = instance_limit(instance_type, node)
        if delta > limit or len(counts) == 1:
            used = sum(1 for t in running if t == instance_type)
            raise ResourceLimitExceeded(quota_message(instance_type, limit, used, delta))
    raise ResourceLimitExceeded(
        "The instance groups of this job together need more than this machine has "
        f"({node.cpus:g} CPUs, {node.memory_mib} MiB, {len(node.gpu_ids)} GPUs)."
    )

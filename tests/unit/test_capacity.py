"""scheduler.capacity: what each host asks for, placement on one machine (shared, capped to
equal shares) and on a cluster (a node per host, GPUs only where there are enough), GPU ids
never shared, and strict admission with SageMaker's quota text."""

from __future__ import annotations

from typing import Any

import pytest

from trainforge.domain.allocation import Allocation, HostAllocation, Node
from trainforge.domain.hosts import hosts_of
from trainforge.errors import ResourceLimitExceeded
from trainforge.scheduler.capacity import (
    instance_limit,
    needs_of,
    plan,
    refuse_if_never_fits,
    refuse_if_too_many_hosts,
)


def homogeneous(instance_type: str, count: int = 1) -> Any:
    return hosts_of({"ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count}})


def groups(*specs: tuple[str, str, int]) -> Any:
    return hosts_of(
        {
            "ResourceConfig": {
                "InstanceGroups": [
                    {"InstanceGroupName": n, "InstanceType": t, "InstanceCount": c}
                    for n, t, c in specs
                ]
            }
        }
    )


def machine(cpus: float, memory_mib: int, gpus: int = 0) -> Node:
    return Node("local", cpus, memory_mib, tuple(str(i) for i in range(gpus)))


BIG = machine(64.0, 512 * 1024, 8)


def test_needs_of_each_host_from_its_own_instance_type() -> None:
    needs = needs_of(groups(("cpu", "ml.m5.large", 2), ("gpu", "ml.g5.xlarge", 1)))
    assert [(n.host.name, n.cpus, n.memory_mib, n.gpus) for n in needs] == [
        ("algo-1", 2.0, 8192, 0),
        ("algo-2", 2.0, 8192, 0),
        ("algo-3", 4.0, 16384, 1),
    ]
    with pytest.raises(KeyError):
        needs_of(homogeneous("ml.nope.large"))


def test_plan_without_capping() -> None:
    allocation = plan(homogeneous("ml.m5.xlarge", 2), [BIG], [], spread=False)
    assert allocation == Allocation(
        (
            HostAllocation("algo-1", "ml.m5.xlarge", "local", 4.0, 16384),
            HostAllocation("algo-2", "ml.m5.xlarge", "local", 4.0, 16384),
        )
    )
    assert allocation.hosts[0].memory_bytes == 16384 << 20
    assert allocation.hosts[0].shm_bytes == 8192 << 20


def test_instance_groups_get_their_own_limits() -> None:
    allocation = plan(
        groups(("a", "ml.m5.xlarge", 1), ("b", "ml.m5.large", 1), ("g", "ml.g5.2xlarge", 1)),
        [BIG],
        [],
        spread=False,
    )
    assert allocation is not None
    assert [(h.host, h.cpus, h.memory_mib, h.gpu_ids) for h in allocation.hosts] == [
        ("algo-1", 4.0, 16384, ()),
        ("algo-2", 2.0, 8192, ()),
        ("algo-3", 8.0, 32768, ("0",)),
    ]


def test_plan_caps_to_equal_shares_with_a_warning() -> None:
    node = machine(8.0, 32768)
    allocation = plan(homogeneous("ml.m5.xlarge", 3), [node], [], spread=False)
    assert allocation is not None
    assert [h.memory_mib for h in allocation.hosts] == [10922, 10922, 10922]
    assert [h.cpus for h in allocation.hosts] == [8.0 / 3] * 3
    assert allocation.warnings == (
        "ml.m5.xlarge has 4 vCPUs, 16 GiB and 0 GPUs per host (3 hosts); this machine has 8 "
        "CPUs, 32 GiB and 0 GPUs, so each container runs with at most 2.66667 CPUs, 10922 MiB "
        "and 0 GPUs.",
    )


def test_plan_caps_gpus_of_one_host() -> None:
    allocation = plan(homogeneous("ml.p3.2xlarge"), [machine(16.0, 131072)], [], spread=False)
    assert allocation is not None
    assert allocation.hosts == (HostAllocation("algo-1", "ml.p3.2xlarge", "local", 8.0, 62464),)
    assert allocation.warnings == (
        "ml.p3.2xlarge has 8 vCPUs, 61 GiB and 1 GPUs per host (1 host); this machine has 16 "
        "CPUs, 128 GiB and 0 GPUs, so each container runs with at most 8 CPUs, 62464 MiB and "
        "0 GPUs.",
    )


def running(*hosts: HostAllocation) -> Allocation:
    return Allocation(tuple(hosts))


def test_fits_beside_running_jobs() -> None:
    node = machine(8.0, 32768, 2)
    job = homogeneous("ml.m5.xlarge")  # 4 CPUs, 16384 MiB
    assert plan(job, [node], [], spread=False) is not None
    half = running(HostAllocation("algo-1", "ml.m5.xlarge", "local", 4.0, 16384, ("0", "1")))
    assert plan(job, [node], [half], spread=False) is not None
    more_cpu = running(HostAllocation("algo-1", "x", "local", 4.5, 0))
    assert plan(job, [node], [more_cpu], spread=False) is None
    more_memory = running(HostAllocation("algo-1", "x", "local", 0, 16385))
    assert plan(job, [node], [more_memory], spread=False) is None
    gpu_job = homogeneous("ml.g5.xlarge")
    one_gpu = running(HostAllocation("algo-1", "x", "local", 0, 0, ("0",)))
    assert plan(gpu_job, [node], [one_gpu], spread=False) is not None
    assert plan(gpu_job, [node], [half], spread=False) is None


def test_gpus_are_never_shared() -> None:
    node = machine(64.0, 1 << 20, 4)
    taken = running(
        HostAllocation("algo-1", "x", "local", 1, 1, ("0",)),
        HostAllocation("algo-2", "x", "local", 1, 1, ("2",)),
    )
    allocation = plan(homogeneous("ml.g5.xlarge", 2), [node], [taken], spread=False)
    assert allocation is not None
    assert [h.gpu_ids for h in allocation.hosts] == [("1",), ("3",)]


def test_several_gpus_per_host_and_none() -> None:
    node = machine(128.0, 1 << 21, 8)
    allocation = plan(homogeneous("ml.g5.12xlarge", 2), [node], [], spread=False)
    assert allocation is not None
    assert [h.gpu_ids for h in allocation.hosts] == [("0", "1", "2", "3"), ("4", "5", "6", "7")]
    taken = running(HostAllocation("algo-1", "x", "local", 1, 1, ("1",)))
    assert plan(homogeneous("ml.g5.12xlarge", 2), [node], [taken], spread=False) is None
    cpu_job = plan(homogeneous("ml.m5.large"), [node], [], spread=False)
    assert cpu_job is not None and cpu_job.hosts[0].gpu_ids == ()


NODES = [
    Node("n1", 4.0, 16384),
    Node("n2", 4.0, 16384),
    Node("gpu", 8.0, 65536, ("0", "1")),
]


def test_spread_puts_each_host_on_a_node_of_its_own() -> None:
    allocation = plan(homogeneous("ml.m5.large", 3), NODES, [], spread=True)
    assert allocation is not None
    assert sorted(h.node for h in allocation.hosts) == ["gpu", "n1", "n2"]
    assert plan(homogeneous("ml.m5.large", 4), NODES, [], spread=True) is None


def test_spread_puts_gpu_hosts_only_where_there_are_enough_gpus() -> None:
    allocation = plan(
        groups(("cpu", "ml.m5.large", 1), ("gpu", "ml.g5.xlarge", 1)), NODES, [], spread=True
    )
    assert allocation is not None
    assert [(h.host, h.node, h.gpu_ids) for h in allocation.hosts] == [
        ("algo-1", "n1", ()),
        ("algo-2", "gpu", ("0",)),
    ]
    assert plan(homogeneous("ml.g5.12xlarge"), NODES, [], spread=True) is None
    busy = running(HostAllocation("algo-1", "ml.g5.xlarge", "gpu", 4.0, 16384, ("0", "1")))
    assert plan(homogeneous("ml.g5.xlarge"), NODES, [busy], spread=True) is None


def test_spread_caps_a_host_to_its_node_with_a_warning() -> None:
    allocation = plan(homogeneous("ml.m5.2xlarge", 2), NODES[:2], [], spread=True)
    assert allocation is not None
    assert [(h.cpus, h.memory_mib) for h in allocation.hosts] == [(4.0, 16384), (4.0, 16384)]
    assert allocation.warnings == (
        "ml.m5.2xlarge has 8 vCPUs, 32 GiB and 0 GPUs per host (1 host); node n1 has 4 CPUs, "
        "16 GiB and 0 GPUs, so its container runs with at most 4 CPUs, 16384 MiB and 0 GPUs.",
    )


def test_allocation_round_trips_through_json() -> None:
    allocation = Allocation(
        (HostAllocation("algo-1", "ml.g5.xlarge", "gpu", 4.0, 16384, ("1",)),), ("careful",)
    )
    assert Allocation.from_json(allocation.to_json()) == allocation
    assert Allocation.from_json(None) is None
    assert Allocation.from_json('{"cpus": 2}') is None  # written by an older trainforge


def test_refuse_with_sagemakers_quota_text() -> None:
    with pytest.raises(ResourceLimitExceeded) as info:
        refuse_if_never_fits(homogeneous("ml.p3.2xlarge"), [machine(16.0, 65536)], [], False)
    assert info.value.message == (
        "The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances, "
        "with current utilization of 0 Instances and a request delta of 1 Instances. Please use "
        "AWS Service Quotas to request an increase for this quota."
    )
    assert info.value.code == "ResourceLimitExceeded"


def test_refuse_counts_current_utilization_and_delta() -> None:
    with pytest.raises(ResourceLimitExceeded) as info:
        refuse_if_never_fits(
            homogeneous("ml.m5.xlarge", 3),
            [machine(8.0, 65536)],
            ["ml.m5.xlarge", "ml.m5.large", "ml.m5.xlarge"],
            False,
        )
    assert info.value.message == (
        "The account-level service limit 'ml.m5.xlarge for training job usage' is 2 Instances, "
        "with current utilization of 2 Instances and a request delta of 3 Instances. Please use "
        "AWS Service Quotas to request an increase for this quota."
    )


def test_refuse_names_the_group_that_can_never_fit() -> None:
    with pytest.raises(ResourceLimitExceeded) as info:
        refuse_if_never_fits(
            groups(("cpu", "ml.m5.large", 1), ("gpu", "ml.g5.xlarge", 1)),
            [machine(16.0, 131072)],
            [],
            False,
        )
    assert info.value.message.startswith(
        "The account-level service limit 'ml.g5.xlarge for training job usage' is 0 Instances"
    )


def test_refuse_groups_that_only_together_are_too_big() -> None:
    with pytest.raises(ResourceLimitExceeded) as info:
        refuse_if_never_fits(
            groups(("big", "ml.m5.4xlarge", 1), ("small", "ml.m5.xlarge", 1)),
            [machine(16.0, 131072)],
            [],
            False,
        )
    assert info.value.message == (
        "The instance groups of this job together need more than this machine has "
        "(16 CPUs, 131072 MiB, 0 GPUs)."
    )


def test_refuse_accepts_what_fits() -> None:
    node = machine(8.0, 32768, 1)
    refuse_if_never_fits(homogeneous("ml.m5.xlarge", 2), [node], ["ml.m5.xlarge"] * 5, False)
    refuse_if_never_fits(homogeneous("ml.g5.xlarge"), [node], [], False)


def test_refuse_on_a_cluster_with_too_few_nodes_or_gpus() -> None:
    with pytest.raises(ResourceLimitExceeded) as info:
        refuse_if_never_fits(homogeneous("ml.m5.large", 4), NODES, [], True)
    assert "ml.m5.large for training job usage' is 3 Instances" in info.value.message
    with pytest.raises(ResourceLimitExceeded):
        refuse_if_never_fits(homogeneous("ml.g5.12xlarge"), NODES, [], True)
    refuse_if_never_fits(homogeneous("ml.m5.large", 3), NODES, [], True)


@pytest.mark.parametrize(
    ("instance_type", "node", "limit"),
    [
        ("ml.m5.large", machine(8.0, 16384), 2),
        ("ml.m5.large", machine(8.0, 1 << 20), 4),
        ("ml.m5.large", machine(1.0, 1 << 20), 0),
        ("ml.p3.2xlarge", machine(64.0, 1 << 20), 0),
        ("ml.p3.2xlarge", machine(64.0, 1 << 20, 3), 3),
        ("ml.p3.8xlarge", machine(64.0, 1 << 20, 6), 1),
        ("ml.m5.xlarge", machine(12.0, 49152), 3),
    ],
)
def test_instance_limit(instance_type: str, node: Node, limit: int) -> None:
    assert instance_limit(instance_type, node) == limit


def test_one_machine_refuses_more_hosts_than_it_can_share_among() -> None:
    node = machine(2.0, 24576)
    refuse_if_too_many_hosts(homogeneous("ml.m5.large", 40), node)
    with pytest.raises(ResourceLimitExceeded) as info:
        refuse_if_too_many_hosts(homogeneous("ml.m5.large", 100_000), node)
    assert info.value.message.startswith(
        "The account-level service limit 'ml.m5.large for training job usage' is 40 Instances, "
        "with current utilization of 0 Instances and a request delta of 100000 Instances."
    )
    with pytest.raises(ResourceLimitExceeded, match="this machine holds at most 40"):
        refuse_if_too_many_hosts(groups(("a", "ml.m5.large", 30), ("b", "ml.c5.xlarge", 30)), node)

"""scheduler.capacity: what a job asks of the machine, capping, admission and GPU assignment."""

from __future__ import annotations

from typing import Any

import pytest

from trainforge.errors import ResourceLimitExceeded
from trainforge.scheduler.capacity import (
    Allocation,
    Capacity,
    HostNeed,
    allocate,
    assign_gpus,
    fits,
    host_needs,
    instance_limit,
    machine_capacity,
    refuse_if_never_fits,
)


def homogeneous(instance_type: str, count: int = 1) -> dict[str, Any]:
    return {"ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count}}


def groups(*specs: tuple[str, str, int]) -> dict[str, Any]:
    return {
        "ResourceConfig": {
            "InstanceGroups": [
                {"InstanceGroupName": n, "InstanceType": t, "InstanceCount": c} for n, t, c in specs
            ]
        }
    }


BIG = Capacity(cpus=64.0, memory_mib=512 * 1024, gpus=8)


def test_host_needs_homogeneous() -> None:
    assert host_needs(homogeneous("ml.m5.large", 2)) == [
        HostNeed("algo-1", "ml.m5.large", 2.0, 8192, 0),
        HostNeed("algo-2", "ml.m5.large", 2.0, 8192, 0),
    ]
    assert host_needs({"ResourceConfig": {"InstanceType": "ml.p3.2xlarge"}}) == [
        HostNeed("algo-1", "ml.p3.2xlarge", 8.0, 61 * 1024, 1)
    ]


def test_host_needs_for_instance_groups() -> None:
    request = groups(("cpu", "ml.m5.large", 2), ("gpu", "ml.g5.xlarge", 1))
    assert host_needs(request) == [
        HostNeed("algo-1", "ml.m5.large", 2.0, 8192, 0),
        HostNeed("algo-2", "ml.m5.large", 2.0, 8192, 0),
        HostNeed("algo-3", "ml.g5.xlarge", 4.0, 16384, 1),
    ]


def test_host_needs_unknown_type() -> None:
    with pytest.raises(KeyError):
        host_needs(homogeneous("ml.nope.large"))


def test_allocate_without_capping() -> None:
    allocation = allocate(homogeneous("ml.m5.xlarge", 2), BIG)
    assert allocation == Allocation(
        hosts=(
            HostNeed("algo-1", "ml.m5.xlarge", 4.0, 16384, 0),
            HostNeed("algo-2", "ml.m5.xlarge", 4.0, 16384, 0),
        ),
        capped=False,
        warnings=(),
    )
    assert allocation.cpus == 8.0
    assert allocation.memory_mib == 32768
    assert allocation.gpus == 0


def test_allocate_caps_to_equal_shares_with_a_warning() -> None:
    machine = Capacity(cpus=8.0, memory_mib=32768, gpus=0)
    allocation = allocate(homogeneous("ml.m5.xlarge", 3), machine)
    assert allocation.capped
    assert [h.memory_mib for h in allocation.hosts] == [10922, 10922, 10922]
    assert [h.cpus for h in allocation.hosts] == [8.0 / 3] * 3
    assert allocation.warnings == (
        "ml.m5.xlarge has 4 vCPUs, 16 GiB and 0 GPUs per host (3 hosts); this machine has 8 "
        "CPUs, 32 GiB and 0 GPUs, so each container runs with at most 2.66667 CPUs, 10922 MiB "
        "and 0 GPUs.",
    )
    assert allocation.cpus <= machine.cpus
    assert allocation.memory_mib <= machine.memory_mib


def test_allocate_caps_gpus_of_one_host() -> None:
    machine = Capacity(cpus=16.0, memory_mib=131072, gpus=0)
    allocation = allocate(homogeneous("ml.p3.2xlarge"), machine)
    assert allocation.hosts == (HostNeed("algo-1", "ml.p3.2xlarge", 8.0, 62464, 0),)
    assert allocation.warnings == (
        "ml.p3.2xlarge has 8 vCPUs, 61 GiB and 1 GPUs per host (1 host); this machine has 16 "
        "CPUs, 128 GiB and 0 GPUs, so each container runs with at most 8 CPUs, 62464 MiB and "
        "0 GPUs.",
    )


def test_allocation_resources() -> None:
    allocation = allocate(groups(("a", "ml.m5.xlarge", 1), ("b", "ml.m5.large", 1)), BIG)
    assert allocation.resources({"algo-1": [], "algo-2": []}) == {
        "cpus": 2.0,
        "memory_bytes": 8192 * 1024 * 1024,
        "shm_bytes": 4096 * 1024 * 1024,
        "gpus": 0,
        "gpu_ids": {"algo-1": [], "algo-2": []},
        "total_cpus": 6.0,
        "total_memory_mib": 24576,
        "total_gpus": 0,
        "instance_types": ["ml.m5.xlarge", "ml.m5.large"],
    }
    assert allocation.resources()["gpu_ids"] == {}


def test_fits_beside_running_jobs() -> None:
    machine = Capacity(cpus=8.0, memory_mib=32768, gpus=2)
    job = allocate(homogeneous("ml.m5.xlarge"), machine)  # 4 CPUs, 16384 MiB
    assert fits(job, [], machine)
    assert fits(job, [{"total_cpus": 4, "total_memory_mib": 16384, "total_gpus": 2}], machine)
    assert not fits(job, [{"total_cpus": 4.5, "total_memory_mib": 0}], machine)
    assert not fits(job, [{"total_cpus": 0, "total_memory_mib": 16385}], machine)
    gpu_job = allocate(homogeneous("ml.g5.xlarge"), machine)
    assert fits(gpu_job, [{"total_gpus": 1}], machine)
    assert not fits(gpu_job, [{"total_gpus": 2}], machine)
    assert fits(job, [{}], machine)


def test_assign_gpus_never_shares_a_device() -> None:
    machine = Capacity(cpus=64.0, memory_mib=1 << 20, gpus=4)
    job = allocate(homogeneous("ml.g5.xlarge", 2), machine)
    running = [{"gpu_ids": {"algo-1": ["0"], "algo-2": ["2"]}}, {"gpu_ids": None}, {}]
    assigned = assign_gpus(job, running, machine)
    assert assigned == {"algo-1": ["1"], "algo-2": ["3"]}
    taken = {"0", "2"}
    mine = [d for devices in assigned.values() for d in devices]
    assert len(mine) == len(set(mine))
    assert not taken & set(mine)


def test_assign_gpus_several_per_host_and_none() -> None:
    machine = Capacity(cpus=128.0, memory_mib=1 << 21, gpus=8)
    job = allocate(homogeneous("ml.g5.12xlarge", 2), machine)
    assert assign_gpus(job, [{"gpu_ids": {"algo-1": ["1"]}}], machine) == {
        "algo-1": ["0", "2", "3", "4"],
        "algo-2": ["5", "6", "7"],
    }
    cpu_job = allocate(homogeneous("ml.m5.large"), machine)
    assert assign_gpus(cpu_job, [], machine) == {"algo-1": []}


def test_refuse_with_sagemakers_quota_text() -> None:
    machine = Capacity(cpus=16.0, memory_mib=65536, gpus=0)
    with pytest.raises(ResourceLimitExceeded) as info:
        refuse_if_never_fits(homogeneous("ml.p3.2xlarge"), machine, [])
    assert info.value.message == (
        "The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances, "
        "with current utilization of 0 Instances and a request delta of 1 Instances. Please use "
        "AWS Service Quotas to request an increase for this quota."
    )
    assert info.value.code == "ResourceLimitExceeded"


def test_refuse_counts_current_utilization_and_delta() -> None:
    machine = Capacity(cpus=8.0, memory_mib=65536, gpus=0)
    with pytest.raises(ResourceLimitExceeded) as info:
        refuse_if_never_fits(
            homogeneous("ml.m5.xlarge", 3), machine, ["ml.m5.xlarge", "ml.m5.large", "ml.m5.xlarge"]
        )
    assert info.value.message == (
        "The account-level service limit 'ml.m5.xlarge for training job usage' is 2 Instances, "
        "with current utilization of 2 Instances and a request delta of 3 Instances. Please use "
        "AWS Service Quotas to request an increase for this quota."
    )


def test_refuse_names_the_group_that_can_never_fit() -> None:
    machine = Capacity(cpus=16.0, memory_mib=131072, gpus=0)
    with pytest.raises(ResourceLimitExceeded) as info:
        refuse_if_never_fits(
            groups(("cpu", "ml.m5.large", 1), ("gpu", "ml.g5.xlarge", 1)), machine, []
        )
    assert info.value.message.startswith(
        "The account-level service limit 'ml.g5.xlarge for training job usage' is 0 Instances"
    )


def test_refuse_groups_that_only_together_are_too_big() -> None:
    machine = Capacity(cpus=16.0, memory_mib=131072, gpus=0)
    with pytest.raises(ResourceLimitExceeded) as info:
        refuse_if_never_fits(
            groups(("big", "ml.m5.4xlarge", 1), ("small", "ml.m5.xlarge", 1)), machine, []
        )
    assert info.value.message == (
        "The instance groups of this job together need more than this machine has "
        "(16 CPUs, 131072 MiB, 0 GPUs)."
    )


def test_refuse_accepts_what_fits() -> None:
    machine = Capacity(cpus=8.0, memory_mib=32768, gpus=1)
    refuse_if_never_fits(homogeneous("ml.m5.xlarge", 2), machine, ["ml.m5.xlarge"] * 5)
    refuse_if_never_fits(homogeneous("ml.g5.xlarge"), machine, [])


@pytest.mark.parametrize(
    ("instance_type", "capacity", "limit"),
    [
        ("ml.m5.large", Capacity(8.0, 16384, 0), 2),
        ("ml.m5.large", Capacity(8.0, 1 << 20, 0), 4),
        ("ml.m5.large", Capacity(1.0, 1 << 20, 0), 0),
        ("ml.p3.2xlarge", Capacity(64.0, 1 << 20, 0), 0),
        ("ml.p3.2xlarge", Capacity(64.0, 1 << 20, 3), 3),
        ("ml.p3.8xlarge", Capacity(64.0, 1 << 20, 6), 1),
        ("ml.m5.xlarge", Capacity(12.0, 49152, 0), 3),
    ],
)
def test_instance_limit(instance_type: str, capacity: Capacity, limit: int) -> None:
    assert instance_limit(instance_type, capacity) == limit


def test_machine_capacity_overrides() -> None:
    assert machine_capacity(6, 2048, 2) == Capacity(6.0, 2048, 2)
    detected = machine_capacity()
    assert detected.cpus >= 1.0
    assert detected.memory_mib > 0
    assert detected.gpus == 0

"""Owns what a SageMaker training instance type stands for: the vCPUs, memory, NVIDIA GPUs and
other accelerators (Trainium) of the EC2 instance behind each ``TrainingInstanceType``. The
figures live in ``trainforge/data/instance_types.json``; this module loads that file once and
answers look-ups from the cached table.
"""

from __future__ import annotations

import json
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

DATA_PACKAGE = "trainforge.data"
DATA_FILE = "instance_types.json"


@dataclass(frozen=True)
class InstanceResources:
    """The resources of one instance type. ``gpus`` counts NVIDIA GPUs only, with
    ``gpu_memory_gib`` the memory of each (None where there are none); ``accelerators`` counts
    other accelerator chips such as AWS Trainium."""

    vcpus: float
    memory_gib: float
    gpus: int
    gpu_memory_gib: float | None
    accelerators: int


def _parse(instance_type: str, entry: Any) -> InstanceResources:
    if not isinstance(entry, dict):
        raise ValueError(f"{DATA_FILE}: entry for {instance_type} is not an object")
    gpu_memory = entry.get("gpu_memory_gib")
    return InstanceResources(
        vcpus=float(entry["vcpus"]),
        memory_gib=float(entry["memory_gib"]),
        gpus=int(entry.get("gpus", 0)),
        gpu_memory_gib=None if gpu_memory is None else float(gpu_memory),
        accelerators=int(entry.get("accelerators", 0)),
    )


@cache
def _table() -> Mapping[str, InstanceResources]:
    data = pkgutil.get_data(DATA_PACKAGE, DATA_FILE)
    if data is None:
        raise ValueError(f"{DATA_FILE} cannot be read from {DATA_PACKAGE}")
    document = json.loads(data)
    types = document.get("types") if isinstance(document, dict) else None
    if not isinstance(types, dict):
        raise ValueError(f"{DATA_FILE}: no 'types' object")
    return {str(name): _parse(str(name), entry) for name, entry in types.items()}


def resources_for(instance_type: str) -> InstanceResources:
    """The resources of ``instance_type`` (e.g. ``ml.g5.xlarge``); KeyError if it is unknown."""
    try:
        return _table()[instance_type]
    except KeyError:
        raise KeyError(f"unknown instance type: {instance_type}") from None


@cache
def known_types() -> frozenset[str]:
    """Every instance type the table describes."""
    return frozenset(_table())

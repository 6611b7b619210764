"""The instance-type table: it covers every SageMaker TrainingInstanceType, its figures match the
published EC2 specifications, and the loader turns it into InstanceResources."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import botocore.session
import pytest
from botocore.model import StringShape

from trainforge.scheduler.instance_types import InstanceResources, known_types, resources_for


def training_instance_types() -> list[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.shape_for("TrainingInstanceType")
    assert isinstance(shape, StringShape)
    return list(shape.enum)


def raw_table() -> dict[str, Any]:
    text = resources.files("trainforge.data").joinpath("instance_types.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def test_every_training_instance_type_is_described() -> None:
    enum = training_instance_types()
    assert len(enum) > 200
    missing = sorted(set(enum) - set(raw_table()["types"]))
    assert missing == []
    assert set(enum) <= known_types()


def test_file_has_source_note_and_estimates_are_known_types() -> None:
    document = raw_table()
    assert isinstance(document["_source"], str) and document["_source"]
    assert set(document.get("_estimated", [])) <= set(document["types"])


def test_known_types_match_the_file() -> None:
    assert known_types() == frozenset(raw_table()["types"])


# (vcpus, memory GiB, GPUs, GPU memory GiB per GPU)
ANCHORS = {
    "ml.m5.large": (2, 8, 0, None),
    "ml.m5.xlarge": (4, 16, 0, None),
    "ml.m5.2xlarge": (8, 32, 0, None),
    "ml.c5.xlarge": (4, 8, 0, None),
    "ml.p3.2xlarge": (8, 61, 1, 16),
    "ml.g4dn.xlarge": (4, 16, 1, 16),
    "ml.g5.xlarge": (4, 16, 1, 24),
    "ml.g5.12xlarge": (48, 192, 4, 24),
    "ml.p4d.24xlarge": (96, 1152, 8, 40),
    "ml.p5.48xlarge": (192, 2048, 8, 80),
}


@pytest.mark.parametrize(("instance_type", "expected"), sorted(ANCHORS.items()))
def test_anchor_values(instance_type: str, expected: tuple[int, int, int, int | None]) -> None:
    vcpus, memory, gpus, gpu_memory = expected
    assert resources_for(instance_type) == InstanceResources(
        vcpus=vcpus, memory_gib=memory, gpus=gpus, gpu_memory_gib=gpu_memory, accelerators=0
    )


def test_trainium_counts_as_accelerators_not_gpus() -> None:
    trn = resources_for("ml.trn1.32xlarge")
    assert trn.gpus == 0
    assert trn.gpu_memory_gib is None
    assert trn.accelerators == 16


@pytest.mark.parametrize("instance_type", sorted(raw_table()["types"]))
def test_figures_are_positive_and_consistent(instance_type: str) -> None:
    entry = raw_table()["types"][instance_type]
    for key, value in entry.items():
        if isinstance(value, int | float):
            assert not isinstance(value, bool), key
            assert value >= 0, key
    assert entry["vcpus"] > 0
    assert entry["memory_gib"] > 0
    assert isinstance(entry["gpus"], int)
    if entry["gpus"] > 0:
        assert entry["gpu_memory_gib"] > 0
    else:
        assert "gpu_memory_gib" not in entry
    accelerators = entry.get("accelerators", 0)
    assert isinstance(accelerators, int)
    assert accelerators >= 0
    assert not (entry["gpus"] and accelerators), "a type has GPUs or other accelerators"


def test_loader_returns_frozen_dataclass() -> None:
    res = resources_for("ml.g5.12xlarge")
    assert type(res) is InstanceResources
    assert isinstance(res.vcpus, float)
    assert isinstance(res.memory_gib, float)
    assert isinstance(res.gpus, int)
    assert isinstance(res.gpu_memory_gib, float)
    assert isinstance(res.accelerators, int)
    assert resources_for("ml.g5.12xlarge") is res
    with pytest.raises(AttributeError):
        res.gpus = 1  # type: ignore[misc]


def test_cpu_only_type_has_no_gpu_memory() -> None:
    res = resources_for("ml.c4.xlarge")
    assert res == InstanceResources(
        vcpus=4, memory_gib=7.5, gpus=0, gpu_memory_gib=None, accelerators=0
    )


def test_unknown_type_raises_key_error() -> None:
    with pytest.raises(KeyError, match=r"ml\.nope\.xlarge"):
        resources_for("ml.nope.xlarge")
    with pytest.raises(KeyError):
        resources_for("m5.large")

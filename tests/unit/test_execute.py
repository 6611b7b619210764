"""runtime.execute: container_invocation, the four cases of spec §4.1."""

from __future__ import annotations

from typing import Any

from trainforge.runtime.execute import container_invocation
from trainforge.runtime.jobspec import JobSpec


def spec(**algorithm: Any) -> JobSpec:
    return JobSpec.from_request(
        "job",
        "arn:aws:sagemaker:us-east-1:000000000000:training-job/job",
        "us-east-1",
        {
            "AlgorithmSpecification": {"TrainingImage": "img:1", **algorithm},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        },
    )


def test_neither_keeps_the_image_entrypoint_with_train() -> None:
    assert container_invocation(spec()) == (None, ("train",))


def test_entrypoint_only_has_no_arguments() -> None:
    assert container_invocation(spec(ContainerEntrypoint=["python", "/opt/t.py"])) == (
        ("python", "/opt/t.py"),
        (),
    )


def test_arguments_only_keep_the_image_entrypoint() -> None:
    assert container_invocation(spec(ContainerArguments=["--epochs", "3"])) == (
        None,
        ("--epochs", "3"),
    )


def test_both() -> None:
    assert container_invocation(
        spec(ContainerEntrypoint=["python", "t.py"], ContainerArguments=["--lr", "0.1"])
    ) == (("python", "t.py"), ("--lr", "0.1"))

"""runtime.image_checks: the contract mistakes an image can make, as warnings."""

from __future__ import annotations

from typing import Any

import pytest

from trainforge.engines.base import ImageContents, ImageInfo
from trainforge.runtime.image_checks import (
    image_warnings,
    is_shell_form,
    is_tini,
    needs_train_on_path,
)
from trainforge.runtime.jobspec import JobSpec

SHELL_WARNING = (
    "The image's ENTRYPOINT is in shell form (/bin/sh -c python train.py): the shell is PID 1, "
    "so the SIGTERM of StopTrainingJob and MaxRuntimeInSeconds never reaches the training "
    "process, which is killed without warning when the grace period ends; the 'train' argument "
    'is ignored too. Use the exec form: ENTRYPOINT ["executable", "arg"].'
)
TINI_WARNING = (
    "The image's ENTRYPOINT is tini (/usr/bin/tini --). SageMaker documents that tini cannot be "
    "the entrypoint of a training image: it runs the 'train' argument as a command. Make your "
    "training program the ENTRYPOINT (exec form), or name it with ContainerEntrypoint."
)
NO_TRAIN_WARNING = (
    "The image has no ENTRYPOINT and no executable named 'train' on its PATH, so `docker run "
    "<image> train` cannot start. Add an executable 'train' to a PATH directory, set an "
    "ENTRYPOINT, or give ContainerEntrypoint."
)


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


def image(entrypoint: tuple[str, ...] | None, cmd: tuple[str, ...] | None = None) -> ImageInfo:
    return ImageInfo(id="sha256:abc", entrypoint=entrypoint, cmd=cmd, env={})


CLEAN = ImageContents(entries_under=(), on_path=True)


@pytest.mark.parametrize(
    ("entrypoint", "shell"),
    [
        (("/bin/sh", "-c", "python train.py"), True),
        (("sh", "-c", "x"), True),
        (("/bin/bash", "-c", "x"), True),
        (("/usr/bin/dash", "-c", "x"), True),
        (("/bin/busybox", "-c", "x"), True),
        (("/bin/sh", "-c"), True),
        (("/bin/sh", "script.sh"), False),
        (("/bin/sh",), False),
        (("python", "-c", "print(1)"), False),
        (("/bin/shell", "-c", "x"), False),
    ],
)
def test_is_shell_form(entrypoint: tuple[str, ...], shell: bool) -> None:
    assert is_shell_form(entrypoint) is shell


@pytest.mark.parametrize(
    ("entrypoint", "tini"),
    [
        (("tini", "--"), True),
        (("/usr/bin/tini", "--", "python"), True),
        (("/tini-static",), True),
        (("/usr/local/bin/tini-amd64", "--"), True),
        (("/sbin/tini-arm64",), True),
        (("/usr/bin/tinix",), False),
        (("python", "tini"), False),
    ],
)
def test_is_tini(entrypoint: tuple[str, ...], tini: bool) -> None:
    assert is_tini(entrypoint) is tini


def test_needs_train_on_path() -> None:
    assert needs_train_on_path(spec(), image(None))
    assert needs_train_on_path(spec(), image(None, cmd=("bash",)))
    assert not needs_train_on_path(spec(), image(("python", "t.py")))
    assert not needs_train_on_path(spec(ContainerEntrypoint=["python"]), image(None))
    assert not needs_train_on_path(spec(ContainerArguments=["train.py"]), image(None))


def test_clean_image_has_no_warnings() -> None:
    assert image_warnings(spec(), image(("python", "/opt/program/train.py")), CLEAN) == []
    assert image_warnings(spec(), image(None), CLEAN) == []


def test_shell_form_entrypoint() -> None:
    warnings = image_warnings(spec(), image(("/bin/sh", "-c", "python train.py")), CLEAN)
    assert warnings == [SHELL_WARNING]


def test_shell_form_is_ignored_when_the_entrypoint_is_overridden() -> None:
    shell = image(("/bin/sh", "-c", "python train.py"))
    assert image_warnings(spec(ContainerEntrypoint=["python", "t.py"]), shell, CLEAN) == []
    # Arguments alone keep the image's entrypoint, so the warning stays.
    assert image_warnings(spec(ContainerArguments=["x"]), shell, CLEAN) == [SHELL_WARNING]


def test_tini_entrypoint() -> None:
    assert image_warnings(spec(), image(("/usr/bin/tini", "--")), CLEAN) == [TINI_WARNING]
    overridden = spec(ContainerEntrypoint=["python"])
    assert image_warnings(overridden, image(("/usr/bin/tini", "--")), CLEAN) == []


def test_no_entrypoint_and_no_train_on_path() -> None:
    missing = ImageContents(entries_under=(), on_path=False)
    assert image_warnings(spec(), image(None), missing) == [NO_TRAIN_WARNING]
    assert image_warnings(spec(), image(("python",)), missing) == []
    assert image_warnings(spec(ContainerEntrypoint=["python"]), image(None), missing) == []
    assert image_warnings(spec(ContainerArguments=["python"]), image(None), missing) == []


def test_content_under_opt_ml_shows_five_entries() -> None:
    contents = ImageContents(
        entries_under=("code", "input", "model", "output", "a", "b", "c"), on_path=True
    )
    assert image_warnings(spec(), image(("python",)), contents) == [
        "The image ships content under /opt/ml (code, input, model, output, a): SageMaker mounts "
        "its own /opt/ml at run time, so this content is hidden from the training container. "
        "Put code and data elsewhere, for example /opt/program."
    ]


def test_several_findings_in_order() -> None:
    contents = ImageContents(entries_under=("code",), on_path=False)
    warnings = image_warnings(spec(), image(("/bin/sh", "-c", "python train.py")), contents)
    assert len(warnings) == 2
    assert warnings[0] == SHELL_WARNING
    assert warnings[1].startswith("The image ships content under /opt/ml (code):")

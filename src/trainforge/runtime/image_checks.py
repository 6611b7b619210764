"""Contract mistakes an image can make, caught before the job runs (spec §4.1, §15). Each finding
is a warning in the job's log, not a refusal: SageMaker would run the image too, and fail later.
"""

from __future__ import annotations

import posixpath

from trainforge.domain import contract
from trainforge.engines.base import ImageContents, ImageInfo
from trainforge.runtime.jobspec import JobSpec

_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "busybox"})
_TINI = frozenset({"tini", "tini-static", "tini-amd64", "tini-arm64"})


def is_shell_form(entrypoint: tuple[str, ...]) -> bool:
    """``ENTRYPOINT cmd`` (shell form) is stored as ``["/bin/sh", "-c", "cmd"]``."""
    return (
        len(entrypoint) >= 2
        and posixpath.basename(entrypoint[0]) in _SHELLS
        and entrypoint[1] == "-c"
    )


def is_tini(entrypoint: tuple[str, ...]) -> bool:
    return posixpath.basename(entrypoint[0]) in _TINI


def needs_train_on_path(spec: JobSpec, image: ImageInfo) -> bool:
    """With no override and no image ENTRYPOINT, Docker executes ``train`` itself."""
    return spec.entrypoint is None and spec.arguments is None and image.entrypoint is None


def image_warnings(spec: JobSpec, image: ImageInfo, contents: ImageContents) -> list[str]:
    warnings = []
    entrypoint = image.entrypoint if spec.entrypoint is None else None
    if entrypoint and is_shell_form(entrypoint):
        warnings.append(
            f"The image's ENTRYPOINT is in shell form ({' '.join(entrypoint)}): the shell is "
            "PID 1, so the SIGTERM of StopTrainingJob and MaxRuntimeInSeconds never reaches the "
            "training process, which is killed without warning when the grace period ends; the "
            f"'{contract.TRAIN_ARGUMENT}' argument is ignored too. Use the exec form: "
            'ENTRYPOINT ["executable", "arg"].'
        )
    if entrypoint and is_tini(entrypoint):
        warnings.append(
            f"The image's ENTRYPOINT is tini ({' '.join(entrypoint)}). SageMaker documents that "
            f"tini cannot be the entrypoint of a training image: it runs the "
            f"'{contract.TRAIN_ARGUMENT}' argument as a command. Make your training program "
            "the ENTRYPOINT (exec form), or name it with ContainerEntrypoint."
        )
    if needs_train_on_path(spec, image) and not contents.on_path:
        warnings.append(
            f"The image has no ENTRYPOINT and no executable named '{contract.TRAIN_ARGUMENT}' on "
            f"its PATH, so `docker run <image> {contract.TRAIN_ARGUMENT}` cannot start. Add an "
            f"executable '{contract.TRAIN_ARGUMENT}' to a PATH directory, set an ENTRYPOINT, or "
            "give ContainerEntrypoint."
        )
    if contents.entries_under:
        shown = ", ".join(contents.entries_under[:5])
        warnings.append(
            f"The image ships content under {contract.OPT_ML} ({shown}): SageMaker mounts its "
            f"own {contract.OPT_ML} at run time, so this content is hidden from the training "
            "container. Put code and data elsewhere, for example /opt/program."
        )
    return warnings

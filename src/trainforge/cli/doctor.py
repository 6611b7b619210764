"""``trainforge doctor``: checks what a job will need on this machine and says what is wrong, on
one screen: the Docker engine and its version, the NVIDIA GPUs and whether a container gets them
(a one-container smoke test, only where GPUs are visible), the S3 endpoint and credentials (one
real request), free disk under the home and the job workspaces, and the server named by
TRAINFORGE_SERVER_URL.

Each check is a function that returns findings and never raises: one check failing never hides
the others. The exit status is 1 when any finding is a failure. This module owns the checks and
their words; it must not start jobs, write to the store or change anything it inspects (the GPU
smoke test's container is removed, whatever happens).
"""

from __future__ import annotations

import enum
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trainforge.errors import TrainforgeError
from trainforge.settings import Settings

_GiB = 1 << 30
DEFAULT_GPU_IMAGE = "ubuntu:22.04"
DEFAULT_MIN_FREE_GIB = 1.0
# The smoke test: NVIDIA's container toolkit puts nvidia-smi into any container given a GPU.
GPU_SMOKE_COMMAND = ("nvidia-smi", "-L")


class State(enum.StrEnum):
    OK = "ok"
    INFO = "--"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    subject: str
    state: State
    detail: str


class EngineProbe(Protocol):
    """What the checks ask of the Docker engine (``engines.dockerapi.DockerApi`` answers it)."""

    def describe(self) -> str: ...

    def version(self) -> dict[str, Any]: ...

    def info(self) -> dict[str, Any]: ...

    def image(self, ref: str) -> object: ...

    def run_once(
        self, image: str, command: Sequence[str], gpu_ids: Sequence[str] = ()
    ) -> tuple[int, str]: ...


def check_docker(engine: EngineProbe) -> Finding:
    try:
        version = engine.version()
    except TrainforgeError as exc:
        return Finding("Docker engine", State.FAIL, str(exc))
    where = engine.describe().removeprefix("Docker at ")
    platform = "/".join(str(version[k]) for k in ("Os", "Arch") if version.get(k))
    return Finding(
        "Docker engine",
        State.OK,
        f"{version.get('Version', '?')} (API {version.get('ApiVersion', '?')}"
        f"{', ' + platform if platform else ''}) at {where}",
    )


def check_gpus(
    engine: EngineProbe | None, gpus: Callable[[], list[str]], image: str
) -> list[Finding]:
    """The GPUs this machine shows, and, when there are some and an engine, whether a container
    given all of them sees them all (``nvidia-smi -L`` inside it)."""
    visible = gpus()
    if not visible:
        return [
            Finding(
                "NVIDIA GPUs",
                State.INFO,
                "none visible (nvidia-smi, /dev/nvidia*): GPU instance types run without GPUs",
            )
        ]
    listed = f"{len(visible)} visible ({', '.join(visible)})"
    if engine is None:
        return [
            Finding(
                "NVIDIA GPUs",
                State.WARN,
                f"{listed}; not tried in a container: the Docker engine is not reachable",
            )
        ]
    findings = [Finding("NVIDIA GPUs", State.OK, listed)]
    try:
        runtimes = sorted(engine.info().get("Runtimes") or {})
    except TrainforgeError:
        runtimes = []
    runtime_note = "nvidia runtime registered" if "nvidia" in runtimes else "no nvidia runtime"
    subject = "GPU container"
    try:
        engine.image(image)
        code, output = engine.run_once(image, GPU_SMOKE_COMMAND, gpu_ids=visible)
    except TrainforgeError as exc:
        return [*findings, Finding(subject, State.FAIL, f"{exc} ({runtime_note})")]
    seen = [line for line in output.splitlines() if line.startswith("GPU ")]
    if code != 0 or len(seen) < len(visible):
        last = output.strip().splitlines()[-1] if output.strip() else "no output"
        return [
            *findings,
            Finding(
                subject,
                State.FAIL,
                f"`{' '.join(GPU_SMOKE_COMMAND)}` in {image} exited {code} and listed "
                f"{len(seen)} of {len(visible)} GPUs: {last} ({runtime_note}; is the NVIDIA "
                "Container Toolkit installed and Docker restarted since?)",
            ),
        ]
    return [
        *findings,
        Finding(
            subject,
            State.OK,
            f"a container of {image} sees all {len(seen)} ({runtime_note})",
        ),
    ]


def check_s3(region: str, bucket: str | None) -> Finding:
    from trainforge.storage.s3 import MissingCredentials, check_access

    try:
        report = check_access(region, bucket)
    except MissingCredentials as exc:
        # Local paths need no S3: only a job that names s3:// needs credentials.
        state = State.FAIL if bucket else State.WARN
        return Finding("S3", state, f"{exc}; s3:// channels and outputs will fail")
    except TrainforgeError as exc:
        return Finding("S3", State.FAIL, str(exc))
    request = f"HeadBucket {bucket}" if bucket else "ListBuckets"
    return Finding(
        "S3",
        State.OK,
        f"{request} at {report.endpoint} as {report.access_key}: {report.found}",
    )


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor: where it will be made, and what it will fill."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(paths: Sequence[tuple[str, Path]], min_free_gib: float) -> list[Finding]:
    findings = []
    for subject, path in paths:
        where = _existing(path)
        try:
            usage = shutil.disk_usage(where)
        except OSError as exc:
            findings.append(Finding(subject, State.FAIL, f"cannot look at {path}: {exc}"))
            continue
        free = usage.free / _GiB
        detail = f"{_gib(usage.free)} free of {_gib(usage.total)} under {path}"
        if free < min_free_gib:
            findings.append(
                Finding(subject, State.FAIL, f"{detail}: less than {min_free_gib:g} GiB")
            )
        elif not os.access(where, os.W_OK):
            findings.append(Finding(subject, State.FAIL, f"{detail}, but {where} is read-only"))
        else:
            findings.append(Finding(subject, State.OK, detail))
    return findings


def _gib(size: int) -> str:
    return f"{size / _GiB:.1f} GiB" if size >= _GiB / 10 else f"{size / (1 << 20):.1f} MiB"


def check_server(url: str | None) -> Finding:
    subject = "Server"
    if not url:
        return Finding(
            subject, State.INFO, "TRAINFORGE_SERVER_URL not set: commands use the local store"
        )
    ping = url.rstrip("/") + "/ping"
    try:
        with urllib.request.urlopen(ping, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Finding(subject, State.FAIL, f"{url} cannot be reached: {reason}")
    if status != 200:
        return Finding(subject, State.FAIL, f"{ping} answered HTTP {status}, not 200")
    return Finding(subject, State.OK, f"{url} answers /ping")


def _bucket_of(s3_uri: str | None) -> tuple[str | None, str | None]:
    """The bucket ``--s3-uri`` names, or why it names none."""
    if not s3_uri:
        return None, None
    from trainforge.storage.location import BadLocation, Scheme, parse_location

    try:
        location = parse_location(s3_uri)
    except BadLocation as exc:
        return None, str(exc)
    if location.scheme is not Scheme.S3:
        return None, f"not an s3:// URI: {s3_uri!r}"
    return location.bucket, None


def diagnose(
    settings: Settings,
    *,
    s3_uri: str | None = None,
    gpu_image: str = DEFAULT_GPU_IMAGE,
    min_free_gib: float = DEFAULT_MIN_FREE_GIB,
    engine: EngineProbe | None = None,
    gpus: Callable[[], list[str]] | None = None,
) -> list[Finding]:
    if engine is None:
        from trainforge.engines.dockerapi import DockerApi

        engine = DockerApi(timeout=15)
    if gpus is None:
        from trainforge.engines.gpus import nvidia_gpus

        gpus = nvidia_gpus
    findings = [check_docker(engine)]
    reachable = findings[0].state is State.OK
    findings += check_gpus(engine if reachable else None, gpus, gpu_image)
    bucket, problem = _bucket_of(s3_uri)
    findings.append(
        Finding("S3", State.FAIL, problem) if problem else check_s3(settings.region, bucket)
    )
    findings += check_disk(
        [("Disk (home)", settings.home), ("Disk (workspaces)", settings.jobs_dir)], min_free_gib
    )
    findings.append(check_server(settings.server_url))
    return findings


def report(findings: Sequence[Finding], out: Any = None) -> int:
    """Print the findings, one line each, and return the exit status: 1 if any failed."""
    out = out or sys.stdout
    width = max(len(f.subject) for f in findings)
    print("trainforge doctor: what a training job needs here", file=out)
    for f in findings:
        print(f"  {f.state.value:<4}  {f.subject:<{width}}  {f.detail}", file=out)
    failed = sum(f.state is State.FAIL for f in findings)
    warned = sum(f.state is State.WARN for f in findings)
    if failed:
        print(f"{failed} problem{'s' if failed > 1 else ''} found.", file=out)
        return 1
    print(
        "Ready." + (f" ({warned} warning{'s' if warned > 1 else ''})" if warned else ""), file=out
    )
    return 0

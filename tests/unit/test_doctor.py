"""`trainforge doctor`'s GPU branch and its report, with a fake engine: this machine has no GPU,
so the one-container smoke test is exercised here only against scripted answers (what
`nvidia-smi -L` prints in a container that got the GPUs, or did not). The other checks are
tested for real in tests/integration/test_doctor.py."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from trainforge.cli.doctor import Finding, State, check_docker, check_gpus, report
from trainforge.errors import EngineError, ImageNotFound

LISTING = "GPU 0: NVIDIA H100 (UUID: GPU-a)\nGPU 1: NVIDIA H100 (UUID: GPU-b)\n"


class FakeEngine:
    def __init__(
        self,
        smoke: tuple[int, str] = (0, LISTING),
        runtimes: dict[str, Any] | None = None,
        image_error: Exception | None = None,
    ) -> None:
        self.smoke = smoke
        self.runtimes = {"runc": {}, "nvidia": {}} if runtimes is None else runtimes
        self.image_error = image_error
        self.runs: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []

    def describe(self) -> str:
        return "Docker at unix:///var/run/docker.sock"

    def version(self) -> dict[str, Any]:
        return {"Version": "27.1.0", "ApiVersion": "1.46", "Os": "linux", "Arch": "amd64"}

    def info(self) -> dict[str, Any]:
        return {"Runtimes": self.runtimes}

    def image(self, ref: str) -> object:
        if self.image_error:
            raise self.image_error
        return object()

    def run_once(
        self, image: str, command: Sequence[str], gpu_ids: Sequence[str] = ()
    ) -> tuple[int, str]:
        self.runs.append((image, tuple(command), tuple(gpu_ids)))
        return self.smoke


def test_a_container_that_sees_every_gpu_passes() -> None:
    engine = FakeEngine()
    findings = check_gpus(engine, lambda: ["0", "1"], "ubuntu:22.04")
    assert findings == [
        Finding("NVIDIA GPUs", State.OK, "2 visible (0, 1)"),
        Finding(
            "GPU container",
            State.OK,
            "a container of ubuntu:22.04 sees all 2 (nvidia runtime registered)",
        ),
    ]
    assert engine.runs == [("ubuntu:22.04", ("nvidia-smi", "-L"), ("0", "1"))]


def test_a_container_without_the_gpus_fails() -> None:
    engine = FakeEngine(
        smoke=(127, "exec: nvidia-smi: executable file not found in $PATH"), runtimes={"runc": {}}
    )
    findings = check_gpus(engine, lambda: ["0"], "ubuntu:22.04")
    assert findings[1].state is State.FAIL
    assert findings[1].detail.startswith(
        "`nvidia-smi -L` in ubuntu:22.04 exited 127 and listed 0 of 1 GPUs: exec: nvidia-smi:"
    )
    assert "no nvidia runtime" in findings[1].detail


def test_a_container_that_sees_fewer_gpus_fails() -> None:
    engine = FakeEngine(smoke=(0, "GPU 0: NVIDIA H100 (UUID: GPU-a)\n"))
    findings = check_gpus(engine, lambda: ["0", "1"], "ubuntu:22.04")
    assert findings[1].state is State.FAIL and "listed 1 of 2 GPUs" in findings[1].detail


def test_a_smoke_test_image_that_cannot_be_had_fails() -> None:
    engine = FakeEngine(image_error=ImageNotFound("The training image x is not on this machine."))
    findings = check_gpus(engine, lambda: ["0"], "x")
    assert findings[1] == Finding(
        "GPU container",
        State.FAIL,
        "The training image x is not on this machine. (nvidia runtime registered)",
    )
    assert engine.runs == []


def test_gpus_without_a_reachable_engine_warn() -> None:
    findings = check_gpus(None, lambda: ["0"], "ubuntu:22.04")
    assert findings == [
        Finding(
            "NVIDIA GPUs",
            State.WARN,
            "1 visible (0); not tried in a container: the Docker engine is not reachable",
        )
    ]


def test_no_gpus_is_information_and_runs_nothing() -> None:
    engine = FakeEngine()
    findings = check_gpus(engine, lambda: [], "ubuntu:22.04")
    assert [f.state for f in findings] == [State.INFO]
    assert engine.runs == []


def test_the_engine_version_is_reported() -> None:
    assert check_docker(FakeEngine()) == Finding(
        "Docker engine",
        State.OK,
        "27.1.0 (API 1.46, linux/amd64) at unix:///var/run/docker.sock",
    )


def test_an_engine_error_is_a_failure() -> None:
    class Down(FakeEngine):
        def version(self) -> dict[str, Any]:
            raise EngineError("Cannot reach the Docker engine at tcp://127.0.0.1:1: refused")

    assert check_docker(Down()).state is State.FAIL


def test_the_exit_status_is_one_only_when_something_failed() -> None:
    out = io.StringIO()
    ok = [
        Finding("A", State.OK, "fine"),
        Finding("B", State.WARN, "hm"),
        Finding("C", State.INFO, ""),
    ]
    assert report(ok, out) == 0
    assert out.getvalue().splitlines()[-1] == "Ready. (1 warning)"
    out = io.StringIO()
    assert report([*ok, Finding("D", State.FAIL, "broken")], out) == 1
    assert out.getvalue().splitlines()[-2:] == ["  FAIL  D  broken", "1 problem found."]

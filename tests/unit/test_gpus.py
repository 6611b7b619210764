"""GPU discovery: nvidia-smi's list where it is installed, the device nodes otherwise. (Checked
on a real H100 machine too: nvidia_gpus() gave ["0"]; see docs/performance.md.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trainforge.engines import gpus


def test_reads_nvidia_smi(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    smi = tmp_path / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n"
        "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa)'\n"
        "echo 'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb)'\n"
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert gpus.nvidia_gpus() == ["0", "1"]


def test_falls_back_to_device_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpus.shutil, "which", lambda name: None)
    monkeypatch.setattr(
        gpus.os,
        "listdir",
        lambda path: ["nvidia1", "nvidiactl", "nvidia0", "nvidia-uvm", "nvidia10", "null"],
    )
    assert gpus.nvidia_gpus() == ["0", "1", "10"]


def test_no_gpu_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpus.shutil, "which", lambda name: None)
    monkeypatch.setattr(gpus.os, "listdir", lambda path: ["null", "zero"])
    assert gpus.nvidia_gpus() == []

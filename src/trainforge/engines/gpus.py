"""Which NVIDIA GPUs this machine has: ``nvidia-smi -L`` where the driver's tools are installed,
else the ``/dev/nvidia<N>`` device nodes. Standard library only, so the scheduler can ask before
any engine is reachable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

_DEVICE = re.compile(r"nvidia(\d+)$")


def nvidia_gpus() -> list[str]:
    """The GPUs' indexes as strings ("0", "1", ...), the ids Docker's device requests take."""
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        try:
            listed = subprocess.run(
                [smi, "-L"], check=False, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            listed = None
        if listed is not None and listed.returncode == 0:
            found = re.findall(r"^GPU (\d+):", listed.stdout, re.MULTILINE)
            if found:
                return found
    try:
        names = os.listdir("/dev")
    except OSError:
        return []
    return sorted((m.group(1) for n in names if (m := _DEVICE.match(n))), key=int)

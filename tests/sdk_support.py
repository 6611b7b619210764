"""The SageMaker Python SDKs as a user runs them: a script in its own interpreter, pointed at a
`trainforge serve` by nothing but the endpoint variables, its output kept for the test.

SDK v2 (``sagemaker<3``) is in the tests' own environment (the ``dev`` extra). SDK v3
(``sagemaker.train``) cannot be installed beside it: it lives in ``.venv-sdk3`` at the root of the
checkout, a link made by ``make .venv-sdk3/.installed`` (``make test`` makes it) to an environment
built once per machine from ``tests/sdk3-requirements.txt`` under ``~/.cache/trainforge/``. A test that needs it takes the ``sdk3_python`` fixture
(tests/conftest.py) and hands its path to ``run_sdk_script``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK2_PYTHON = sys.executable
SDK3_VENV = ROOT / ".venv-sdk3"
SDK3_PYTHON = SDK3_VENV / "bin" / "python"
SDK3_READY = SDK3_VENV / ".installed"
# The SDKs' own defaults file: telemetry off (it would reach for AWS), nothing else.
SDK_CONFIG = ROOT / "tests" / "sdk-config.yaml"
# The services a training SDK calls, by the names of their endpoint variables.
ENDPOINT_VARIABLES = (
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
    "AWS_ENDPOINT_URL_CLOUDWATCH",
    "AWS_ENDPOINT_URL_IAM",
    "AWS_ENDPOINT_URL_STS",
)


def sdk_env(server_url: str, **extra: str) -> dict[str, str]:
    """This process's environment (credentials, region, ``AWS_ENDPOINT_URL_S3`` of the tests' S3)
    with every SDK endpoint variable pointing at ``server_url``; nothing else is configured but
    the SDKs' telemetry, turned off."""
    env = dict(os.environ)
    env.update({name: server_url for name in ENDPOINT_VARIABLES})
    env["SAGEMAKER_USER_CONFIG_OVERRIDE"] = str(SDK_CONFIG)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_sdk_script(
    python: str | Path,
    script: str,
    *args: str,
    env: dict[str, str],
    cwd: Path,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (Python source) with ``python`` and ``args`` in ``cwd``; stdout and stderr
    together in ``.stdout``. A script still running after ``timeout`` is killed (by
    ``subprocess.run``) and the test fails with what it printed."""
    path = cwd / "sdk_script.py"
    path.write_text(script)
    return subprocess.run(
        [str(python), str(path), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )

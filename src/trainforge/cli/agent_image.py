"""``trainforge agent-image``: build trainforge's agent image locally (no registry), the one
image the nodes of a cluster engine need besides Docker. It is the given Python base image plus
this trainforge and the pure-Python packages its S3 transfers use, copied from this installation,
with ``python3 -m trainforge.runtime.agent`` as its entrypoint. Operators push the printed
reference to their own registry and name it with TRAINFORGE_AGENT_IMAGE.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path

from trainforge.errors import EngineError

# What the agent imports beyond the standard library (checked by a test).
AGENT_PACKAGES = (
    "trainforge",
    "boto3",
    "botocore",
    "s3transfer",
    "urllib3",
    "jmespath",
    "dateutil",
    "six",
    "certifi",
)
DEFAULT_BASE = "python:3.12-slim"

DOCKERFILE = """\
FROM {base}
COPY lib /opt/trainforge/lib
ENV PYTHONPATH=/opt/trainforge/lib PYTHONDONTWRITEBYTECODE=1
LABEL trainforge.agent=1
ENTRYPOINT ["python3", "-m", "trainforge.runtime.agent"]
"""


def _copy_package(name: str, lib: Path) -> None:
    module = importlib.import_module(name)
    source = Path(module.__file__ or "")
    if source.name == "__init__.py":
        shutil.copytree(
            source.parent,
            lib / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "py.typed"),
        )
    else:
        shutil.copy2(source, lib / source.name)


# Run in the built image: the agent must import under the base's Python.
CHECK = (
    "python3",
    "-c",
    "import sys; assert sys.version_info >= (3, 11), sys.version; import trainforge.runtime.agent",
)


def build_agent_image(base: str, tag: str) -> str:
    """Build the agent image as ``tag`` on the engine at DOCKER_HOST, and check that it runs
    the agent; returns ``tag``."""
    from trainforge.engines.dockerapi import DockerApi

    docker = DockerApi()
    with tempfile.TemporaryDirectory(prefix="trainforge-agent-") as context:
        lib = Path(context) / "lib"
        lib.mkdir()
        for name in AGENT_PACKAGES:
            _copy_package(name, lib)
        (Path(context) / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        docker.build_image(context, tag)
    code, output = docker.run_once(tag, CHECK)
    if code != 0:
        docker.remove_image(tag)
        raise EngineError(
            f"The agent image built on {base} cannot run the agent (it needs Python 3.11 or "
            f"later as python3): {output.strip().splitlines()[-1] if output.strip() else code}"
        )
    return tag

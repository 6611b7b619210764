"""The Docker Engine API: the only package of trainforge that talks to Docker (and imports
``docker``). The local engine (``engines.docker``) and the Swarm engine (``engines.swarm``) both
speak to Docker through ``DockerApi``; it turns the engine's errors into ``EngineError``,
``ImageNotFound`` and ``ContainerStartError`` with messages a user can act on.

Its parts: ``transport`` (how the engine is reached: ``http.client`` on a local engine's socket
for what a job's run asks, docker-py otherwise), ``core`` (which engine, and how a failed call
reads), ``containers``, ``images`` and ``services`` (the swarm's), ``logstream`` (Docker's log
frames and times) and ``wire`` (labels, log options, mounts, logins and GPUs as the API takes
them).

Containers' log options are set here, never left to the daemon's defaults: a daemon configured
to rotate json-file logs (``max-size=10m``) rotates faster than a reader follows a chatty job,
and every line a rotation drops is lost to the job's log. trainforge's containers log to a
json-file that is not rotated while they run; the file goes with the container.
"""

from __future__ import annotations

from trainforge.engines.dockerapi.containers import ContainerCalls
from trainforge.engines.dockerapi.images import ImageCalls
from trainforge.engines.dockerapi.logstream import parse_time, parse_timestamp_ns
from trainforge.engines.dockerapi.services import ServiceCalls
from trainforge.engines.dockerapi.transport import Missing
from trainforge.engines.dockerapi.wire import (
    HOME_LABEL,
    HOST_LABEL,
    JOB_LABEL,
    LOG_DRIVER,
    LOG_OPTIONS,
    STREAM_LABEL,
    docker_mount,
    gpu_request,
    label_filter,
    mount_config,
    registry_auth,
)

__all__ = [
    "HOME_LABEL",
    "HOST_LABEL",
    "JOB_LABEL",
    "LOG_DRIVER",
    "LOG_OPTIONS",
    "STREAM_LABEL",
    "DockerApi",
    "Missing",
    "docker_mount",
    "gpu_request",
    "label_filter",
    "mount_config",
    "parse_time",
    "parse_timestamp_ns",
    "registry_auth",
]


class DockerApi(ContainerCalls, ImageCalls, ServiceCalls):
    """One Docker engine (or a swarm's manager): its containers, images and services."""

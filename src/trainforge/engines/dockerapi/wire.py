"""What trainforge's objects look like to the Engine API: the labels it puts on what it makes,
the log options of its containers, a login, a mount and a GPU request as the API (or docker-py's
types, for the swarm's services) takes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trainforge.domain.images import RegistryAuth
from trainforge.engines.base import Mount, MountKind

if TYPE_CHECKING:
    import docker.types

# json-file cannot be told "never rotate" once the daemon sets max-size; a size no job writes
# says the same. One file: nothing is ever rotated away.
LOG_OPTIONS = {"max-size": "1000g", "max-file": "1"}
LOG_DRIVER = "json-file"
# The labels trainforge puts on what it makes, on one engine or a swarm: how a restarted worker
# finds a job's hosts again, and tells this home's from another's.
JOB_LABEL = "trainforge.job"
HOME_LABEL = "trainforge.instance"
HOST_LABEL = "trainforge.host"
STREAM_LABEL = "trainforge.stream"


def label_filter(labels: Mapping[str, str]) -> dict[str, list[str]]:
    return {"label": [f"{k}={v}" for k, v in labels.items()]}


def registry_auth(auth: RegistryAuth | None) -> dict[str, str] | None:
    """A login as the Engine API's X-Registry-Auth carries it; None lets docker-py use the
    Docker client configuration of this user (~/.docker/config.json, credential helpers)."""
    if auth is None:
        return None
    return {"username": auth.username, "password": auth.password, "serveraddress": auth.server}


def mount_config(mount: Mount) -> dict[str, Any]:
    """A mount as the Engine API takes it (what ``docker.types.Mount`` makes of it)."""
    return {
        "Target": str(mount.target),
        "Source": mount.source,
        "Type": "volume" if mount.kind is MountKind.VOLUME else "bind",
        "ReadOnly": mount.read_only,
    }


def gpu_request(gpu_ids: Sequence[str]) -> dict[str, Any]:
    """These GPUs as a device request (what ``docker.types.DeviceRequest`` makes of them)."""
    return {
        "Driver": "",
        "Count": 0,
        "DeviceIDs": list(gpu_ids),
        "Capabilities": [["gpu"]],
        "Options": {},
    }


def docker_mount(mount: Mount) -> docker.types.Mount:
    import docker.types

    return docker.types.Mount(
        target=str(mount.target),
        source=mount.source,
        type="volume" if mount.kind is MountKind.VOLUME else "bind",
        read_only=mount.read_only,
    )

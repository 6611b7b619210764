"""Image references and the credentials a pull presents: which registry an image reference names
(Docker's rules), the same image named at another registry, and ``ImageSource``, what an engine
pulls and with which credentials. Pure: no engine, no AWS client, no settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# What Docker calls the registry of a reference without one ("busybox", "library/python").
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class RegistryAuth:
    """A registry login, as ``docker login`` stores it. The password never appears in a repr."""

    username: str
    password: str = field(repr=False)
    # The registry it is for (a host, or an https:// URL as ECR's proxyEndpoint gives it).
    server: str = ""


@dataclass(frozen=True)
class ImageSource:
    """Where an engine pulls a job's image from: ``ref`` (the job's image, or the same image at
    another registry) with ``auth``, or with the engine's own credentials when ``auth`` is None."""

    ref: str
    auth: RegistryAuth | None = None


def registry_of(ref: str) -> str:
    """The registry host (with its port) a reference names; Docker Hub when it names none. The
    first path component is a registry when it has a dot or a colon, or is ``localhost``
    (Docker's rule: ``user/repo`` is a Docker Hub repository)."""
    first, slash, _ = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DOCKER_HUB


def repository_path(ref: str) -> str:
    """The reference without its registry: ``repo/name:tag`` or ``repo/name@sha256:...``."""
    _, slash, rest = ref.partition("/")
    if slash and registry_of(ref) != DOCKER_HUB:
        return rest
    return ref


def at_registry(ref: str, registry: str) -> str:
    """The same repository, tag or digest at another registry."""
    return f"{registry.rstrip('/')}/{repository_path(ref)}"


def split_tag(ref: str) -> tuple[str, str | None]:
    """``(repository, tag)``; the tag is None for a digest reference or none given. A colon in
    the registry part (a port) is not a tag."""
    if "@" in ref:
        return ref, None
    head, slash, last = ref.rpartition("/")
    if ":" in last:
        name, _, tag = last.rpartition(":")
        return f"{head}{slash}{name}", tag
    return ref, None

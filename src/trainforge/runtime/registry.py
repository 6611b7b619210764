"""Which credentials pull a job's image, and from where (``ImageSource``). In this order:

1. a login configured for the image's registry (TRAINFORGE_REGISTRY_AUTH, or
   TRAINFORGE_REGISTRY_AUTH_FILE in Docker's config.json form, read at each pull);
2. for an ECR image URI, an ECR login with the server's AWS credentials
   (``clients.ecr``), pulled from TRAINFORGE_ECR_REGISTRY_ENDPOINT when one is set;
3. otherwise none here: the engine uses the Docker client configuration of the user running
   trainforge (``~/.docker/config.json``, its credential helpers), as ``docker pull`` would.

It never talks to Docker and never logs a password.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path

from trainforge.clients.ecr import EcrLogin, ecr_registry
from trainforge.domain.images import ImageSource, RegistryAuth, at_registry, registry_of
from trainforge.errors import RegistryLoginFailed

# How Docker's config.json names Docker Hub.
_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io")


class RegistryAccess:
    def __init__(
        self,
        logins: Mapping[str, tuple[str, str]],
        auth_file: str = "",
        ecr_endpoint: str = "",
        ecr: EcrLogin | None = None,
    ) -> None:
        self._logins = {k.lower(): v for k, v in logins.items()}
        self._auth_file = auth_file
        self._ecr_endpoint = ecr_endpoint.strip().rstrip("/")
        self._ecr = ecr or EcrLogin()

    def source(self, ref: str) -> ImageSource:
        """Where to pull ``ref`` from and with which login. Raises ``RegistryLoginFailed``
        naming the image."""
        try:
            return self._source(ref)
        except RegistryLoginFailed as exc:
            raise RegistryLoginFailed(
                f"The training image {ref} could not be pulled: {exc}"
            ) from exc

    def _source(self, ref: str) -> ImageSource:
        registry = registry_of(ref)
        configured = self._configured(registry)
        if configured is not None:
            return ImageSource(ref, configured)
        ecr = ecr_registry(registry)
        if ecr is None:
            return ImageSource(ref)
        auth = self._ecr.auth_for(ecr)
        if self._ecr_endpoint:
            endpoint = self._ecr_endpoint.removeprefix("https://").removeprefix("http://")
            return ImageSource(
                at_registry(ref, endpoint), RegistryAuth(auth.username, auth.password, endpoint)
            )
        return ImageSource(ref, auth)

    def _configured(self, registry: str) -> RegistryAuth | None:
        login = self._logins.get(registry)
        if login is not None:
            return RegistryAuth(login[0], login[1], registry)
        if self._auth_file:
            return _from_docker_config(Path(self._auth_file), registry)
        return None


def _from_docker_config(path: Path, registry: str) -> RegistryAuth | None:
    """The login for ``registry`` in a file of Docker's config.json form
    (``{"auths": {"<registry>": {"auth": base64("user:password")}}}``)."""
    try:
        auths = json.loads(path.read_text()).get("auths") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise RegistryLoginFailed(
            f"the registry logins in {path} (TRAINFORGE_REGISTRY_AUTH_FILE) cannot be read: {exc}"
        ) from exc
    keys = _HUB_KEYS if registry == "docker.io" else (registry,)
    for key, entry in auths.items():
        host = key.removeprefix("https://").removeprefix("http://").rstrip("/").lower()
        if (key in keys or host in keys) and isinstance(entry, dict):
            return _entry_auth(entry, registry, path)
    return None


def _entry_auth(entry: Mapping[str, object], registry: str, path: Path) -> RegistryAuth:
    if entry.get("username") and entry.get("password"):
        return RegistryAuth(str(entry["username"]), str(entry["password"]), registry)
    try:
        user, sep, password = base64.b64decode(str(entry.get("auth", ""))).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        sep = ""
    if not sep:
        raise RegistryLoginFailed(
            f"the login for {registry} in {path} (TRAINFORGE_REGISTRY_AUTH_FILE) is not "
            "base64 of user:password."
        )
    return RegistryAuth(user, password, registry)

"""What a job's containers get to reach AWS as SageMaker's do: the S3 endpoint trainforge uses
(``AWS_ENDPOINT_URL_S3``), and the credentials of the job's role through the credentials
endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and a mounted token file), never keys in the
environment. A job with EnableNetworkIsolation gets none of it.

``TRAINFORGE_PASS_AWS_CREDENTIALS=true`` keeps the old, less safe way: trainforge's own keys in
every container's environment (visible to ``docker inspect``), and no endpoint.

The role's credentials are found while the containers start (``PendingCredentials``: an
AssumeRole round trip, and the SDK it loads, would otherwise hold every job's start), so a
container whose job has none to give still gets the endpoint, which answers it with why.

Warnings (an S3 endpoint containers cannot reach, credentials that are not the role's, an
endpoint that could not start) go to the job's log when the job starts, before any line of its
containers (``settled`` holds those back until the credentials' warnings are in); an engine that
cannot serve credentials at all (the swarm, for now) is said once in the server's log.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from trainforge.engines.base import Mount
from trainforge.errors import CredentialsError
from trainforge.runtime.credentials_endpoint import (
    ENV_FULL_URI,
    ENV_TOKEN_FILE,
    TOKEN_PATH,
    CredentialsEndpoint,
)
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.role_credentials import CredentialsPolicy, PendingCredentials

ENV_S3_ENDPOINT = "AWS_ENDPOINT_URL_S3"
log = logging.getLogger("trainforge.runtime")


@dataclass(frozen=True)
class Grant:
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AwsAccess:
    def __init__(
        self,
        policy: CredentialsPolicy,
        endpoint: CredentialsEndpoint | None,
        s3_endpoint: Callable[[], str | None],
        static_env: Callable[[], Mapping[str, str]] | None = None,
        unavailable: str = "",
    ) -> None:
        self.policy = policy
        self.endpoint = endpoint
        self.s3_endpoint = s3_endpoint
        # Set: TRAINFORGE_PASS_AWS_CREDENTIALS, the old way.
        self.static_env = static_env
        # Why this engine cannot serve credentials to its containers ("" when it can).
        self.unavailable = unavailable
        self._said_unavailable = False
        # Jobs whose credentials are being found, by name.
        self._pending: dict[str, PendingCredentials] = {}
        self._lock = threading.Lock()

    def open(self, spec: JobSpec, warn: Callable[[str], None]) -> Grant:
        """What the job's containers get; call ``close`` once they have ended."""
        if spec.network_isolation:
            return Grant()
        env: dict[str, str] = {}
        s3 = self.s3_endpoint()
        if s3:
            env[ENV_S3_ENDPOINT] = s3
            if is_loopback_url(s3):
                warn(
                    f"The S3 endpoint trainforge uses, {s3}, is a loopback address: the job's "
                    "containers cannot reach it (their loopback is their own), so S3 calls made "
                    "inside the container will fail. Serve S3 on an address the containers can "
                    "reach and point AWS_ENDPOINT_URL_S3 at it."
                )
        if self.static_env is not None:
            env.update(self.static_env())
            return Grant(env)
        if self.endpoint is None:
            return Grant(env)
        if self.unavailable:
            # Said once, in the server's log: every job of the engine is alike.
            if not self._said_unavailable:
                self._said_unavailable = True
                log.warning("Containers get no AWS credentials: %s.", self.unavailable)
            return Grant(env)
        try:
            self.endpoint.start()
        except CredentialsError as exc:
            warn(
                f"The container gets no AWS credentials: the credentials endpoint is not "
                f"available ({exc}). See docs/credentials.md."
            )
            return Grant(env)
        credentials = PendingCredentials(spec.name, spec.role_arn, self.policy, warn)
        with self._lock:
            self._pending[spec.name] = credentials
        token_file = self.endpoint.open(spec.name, credentials)
        env[ENV_FULL_URI] = self.endpoint.url
        env[ENV_TOKEN_FILE] = str(TOKEN_PATH)
        return Grant(env, (Mount(str(token_file), TOKEN_PATH, read_only=True),))

    def settled(self, spec: JobSpec) -> None:
        """Wait until the job's credentials are found and their warnings are in its log."""
        with self._lock:
            pending = self._pending.get(spec.name)
        if pending is not None:
            pending.wait()

    def close(self, spec: JobSpec) -> None:
        # The credentials' warnings belong to the job: they are in its log before it ends.
        with self._lock:
            pending = self._pending.pop(spec.name, None)
        if pending is not None:
            pending.wait()
        if self.endpoint is not None:
            self.endpoint.close(spec.name)

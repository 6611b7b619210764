"""What a job's containers get to reach AWS as SageMaker's do: the S3 endpoint trainforge uses
(``AWS_ENDPOINT_URL_S3``), and the credentials of the job's role through the credentials
endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI`` and a mounted token file), never keys in the
environment. A job with EnableNetworkIsolation gets none of it.

``TRAINFORGE_PASS_AWS_CREDENTIALS=true`` keeps the old, less safe way: trainforge's own keys in
every container's environment (visible to ``docker inspect``), and no endpoint.

The role's credentials are found when a container first asks for them (``PendingCredentials``):
an AssumeRole round trip, and the SDK it loads, would otherwise hold every job's start, also of
the many jobs that never call AWS. A container whose job has none to give still gets the
endpoint, which answers it with why.

Warnings (an S3 endpoint containers cannot reach, an endpoint that could not start) go to the
job's log when the job starts; those of its credentials (that they are not the role's, and why)
when a container first asks for them, before it gets its answer. The token file is a
secret file of the job's group (``engines.base.SecretFile``): bind-mounted on one machine, a
Swarm secret on a cluster, whose nodes relay the containers' requests to this endpoint.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from trainforge.engines.base import SecretFile
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


@dataclass(frozen=True)
class Grant:
    env: Mapping[str, str] = field(default_factory=dict)
    secret_files: tuple[SecretFile, ...] = ()


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
    ) -> None:
        self.policy = policy
        self.endpoint = endpoint
        self.s3_endpoint = s3_endpoint
        # Set: TRAINFORGE_PASS_AWS_CREDENTIALS, the old way.
        self.static_env = static_env

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
        try:
            self.endpoint.start()
        except CredentialsError as exc:
            warn(
                f"The container gets no AWS credentials: the credentials endpoint is not "
                f"available ({exc}). See docs/credentials.md."
            )
            return Grant(env)
        credentials = PendingCredentials(spec.name, spec.role_arn, self.policy, warn)
        try:
            token_file = self.endpoint.open(spec.name, credentials)
        except CredentialsError as exc:
            warn(
                f"The container gets no AWS credentials: the credentials endpoint is not "
                f"available ({exc}). See docs/credentials.md."
            )
            return Grant(env)
        env[ENV_FULL_URI] = self.endpoint.container_url
        env[ENV_TOKEN_FILE] = str(TOKEN_PATH)
        return Grant(env, (SecretFile(token_file, TOKEN_PATH),))

    def close(self, spec: JobSpec) -> None:
        if self.endpoint is not None:
            self.endpoint.close(spec.name)

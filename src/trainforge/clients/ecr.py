"""Amazon ECR, for image pulls: which registry hosts are ECR's, and the login to one of them
(``GetAuthorizationToken`` with the server's own AWS credentials, as the SageMaker SDK's local
mode does before ``docker pull``), cached until the token expires. The only module that builds
boto3's ECR client. It knows nothing of Docker: the login goes to the caller as a
``RegistryAuth``.

The client is built as the S3 client is: the standard credential chain of the process, the
region of the registry's host name (an ECR token is valid only in its region), and the
endpoint botocore finds (``AWS_ENDPOINT_URL_ECR`` or ``AWS_ENDPOINT_URL``, for moto or LocalStack).
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from trainforge.clients.answers import refusal
from trainforge.domain.images import RegistryAuth
from trainforge.errors import RegistryLoginFailed

# <account>.dkr.ecr[-fips].<region>.<partition domain>: aws, aws-cn, the ISO partitions, and
# the dual-stack <account>.dkr-ecr.<region>.on.aws.
_ECR_HOST = re.compile(
    r"^(?P<account>\d{12})\.dkr[.-]ecr(?:-fips)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\."
    r"(?:amazonaws\.com(?:\.cn)?|c2s\.ic\.gov|sc2s\.sgov\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov"
    r"|on\.aws)$"
)
# A token is not used in its last minute: a pull that starts then would fail halfway.
_EXPIRY_MARGIN_SECONDS = 60.0


@dataclass(frozen=True)
class EcrRegistry:
    host: str
    account: str
    region: str


@dataclass(frozen=True)
class Token:
    auth: RegistryAuth
    expires_at: float  # epoch seconds


def ecr_registry(host: str) -> EcrRegistry | None:
    """The ECR registry a host names, or None when it is not ECR's."""
    found = _ECR_HOST.match(host.lower())
    if found is None:
        return None
    return EcrRegistry(host.lower(), found["account"], found["region"])


def fetch_token(registry: EcrRegistry) -> Token:
    """One GetAuthorizationToken call for the registry's account, in its region."""
    import boto3  # only when a login is needed: most commands never make one
    import botocore.exceptions

    try:
        client = boto3.session.Session().client("ecr", region_name=registry.region)
        answer = client.get_authorization_token(registryIds=[registry.account])
        data = answer["authorizationData"][0]
        decoded = base64.b64decode(data["authorizationToken"]).decode()
    except botocore.exceptions.ClientError as exc:
        raise RegistryLoginFailed(
            f"the ECR login for {registry.host} failed: GetAuthorizationToken answered "
            + refusal(exc)
        ) from exc
    except (botocore.exceptions.BotoCoreError, KeyError, IndexError, ValueError) as exc:
        raise RegistryLoginFailed(
            f"the ECR login for {registry.host} failed: GetAuthorizationToken: {exc}"
        ) from exc
    username, _, password = decoded.partition(":")
    expires = data.get("expiresAt")
    expires_at = expires.timestamp() if expires is not None else 0.0
    server = str(data.get("proxyEndpoint") or f"https://{registry.host}")
    return Token(RegistryAuth(username, password, server), expires_at)


class EcrLogin:
    """ECR logins, one per registry, each kept until its token is about to expire."""

    def __init__(
        self,
        fetch: Callable[[EcrRegistry], Token] = fetch_token,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._tokens: dict[str, Token] = {}
        self._lock = threading.Lock()

    def auth_for(self, registry: EcrRegistry) -> RegistryAuth:
        with self._lock:
            token = self._tokens.get(registry.host)
            if token is None or token.expires_at - _EXPIRY_MARGIN_SECONDS <= self._clock():
                token = self._fetch(registry)
                self._tokens[registry.host] = token
            return token.auth

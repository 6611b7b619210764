"""AWS credentials as trainforge obtains them for a job's role: STS AssumeRole with this
process's own credentials, a named profile's keys, or this process's own keys. The one module
that talks to STS; it never logs or formats a secret (``RoleCredentials.__repr__`` hides them).

STS is found as every AWS SDK finds it: ``AWS_ENDPOINT_URL_STS`` (or ``AWS_ENDPOINT_URL``), the
profile's ``endpoint_url``, else AWS's regional endpoint.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import botocore.session

from trainforge.clients.answers import refusal
from trainforge.errors import CredentialsError

# Keys without an expiry (a profile's, this process's) are served as if they lasted this long,
# since the container-credentials format requires an Expiration.
STATIC_LIFETIME_SECONDS = 3600.0


_session: botocore.session.Session | None = None
_session_lock = threading.Lock()


def _own_session() -> botocore.session.Session:
    """One session for this process: its credentials are resolved (and logged by botocore)
    once, not at every job. Making clients from a session is not thread-safe: under the lock.
    botocore's own session, not boto3's: the same credentials and client, without loading
    boto3 and s3transfer (a tenth of a second of a job's start, where nothing else needs them)."""
    global _session
    import botocore.session  # when a job first needs credentials

    with _session_lock:
        if _session is None:
            _session = botocore.session.Session()
        return _session


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: float  # epoch seconds
    # Where they came from, for the job's log: "AssumeRole", "profile NAME", ...
    source: str = ""


def assume_role(
    role_arn: str, session_name: str, duration_seconds: int, region: str
) -> RoleCredentials:
    """Temporary credentials of ``role_arn`` for ``duration_seconds``, with this process's own
    credentials. Raises ``CredentialsError`` saying why STS refused or could not be reached."""
    # botocore's client machinery (its HTTP stack) loads with the first job that needs it.
    import botocore.exceptions
    from botocore.config import Config

    # An unreachable STS must not hold a job's credentials for long: a few seconds, one try.
    config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1})
    try:
        session = _own_session()
        with _session_lock:
            # A client's operations are made at run time from the model (no stubs for STS).
            sts: Any = session.create_client("sts", region_name=region, config=config)
        answer = sts.assume_role(
            RoleArn=role_arn,
            RoleSessionName=session_name[:64],
            DurationSeconds=duration_seconds,
        )
    except botocore.exceptions.ClientError as exc:
        raise CredentialsError(f"STS refused AssumeRole for {role_arn}: {refusal(exc)}") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise CredentialsError(f"AssumeRole for {role_arn} failed: {exc}") from None
    given = answer["Credentials"]
    return RoleCredentials(
        given["AccessKeyId"],
        given["SecretAccessKey"],
        given["SessionToken"],
        given["Expiration"].timestamp(),
        f"AssumeRole of {role_arn}",
    )


def _frozen(session: botocore.session.Session, source: str) -> RoleCredentials | None:
    import botocore.exceptions

    try:
        found = session.get_credentials()
    except botocore.exceptions.BotoCoreError as exc:
        raise CredentialsError(f"the credentials of {source} cannot be read: {exc}") from None
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    if not frozen.access_key or not frozen.secret_key:
        return None
    return RoleCredentials(
        frozen.access_key,
        frozen.secret_key,
        frozen.token or "",
        time.time() + STATIC_LIFETIME_SECONDS,
        source,
    )


def profile_credentials(profile: str) -> RoleCredentials:
    """The keys of an AWS profile (of the shared config and credentials files)."""
    import botocore.exceptions
    import botocore.session

    session = botocore.session.Session(profile=profile)
    try:
        session.get_scoped_config()
    except botocore.exceptions.ProfileNotFound:
        raise CredentialsError(f"the AWS profile {profile!r} does not exist") from None
    found = _frozen(session, f"profile {profile}")
    if found is None:
        raise CredentialsError(f"the AWS profile {profile!r} has no credentials")
    return found


def own_credentials() -> RoleCredentials | None:
    """This process's own credentials (the ones its S3 client uses), or None."""
    return _frozen(_own_session(), "trainforge's own credentials")

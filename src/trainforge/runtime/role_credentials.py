"""Which AWS credentials a job's containers get for its RoleArn, and keeping them fresh:

1. STS AssumeRole of the RoleArn with trainforge's own credentials, the job's name as the
   session name, as SageMaker does (unless ``assume_role`` is off);
2. otherwise (AssumeRole off or refused) the role's entry in TRAINFORGE_ROLE_CREDENTIALS: a
   profile's keys, or keys given there;
3. otherwise trainforge's own credentials (the ones its S3 client uses), with a warning in the
   job's log that says so and why.

Finding them costs a round trip to STS, and loading the AWS SDK for it costs more (a few tenths
of a second, as long as a container takes to start): ``PendingCredentials`` finds them when a
container first asks, so a job that never calls AWS never pays for them.

The warnings go to the job's log; they name sources and refusals, never a secret. Credentials
live in memory only: never in the store, a log line or a container's environment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from trainforge.clients.sts import (
    STATIC_LIFETIME_SECONDS,
    RoleCredentials,
    assume_role,
    own_credentials,
    profile_credentials,
)
from trainforge.errors import CredentialsError
from trainforge.settings import RoleSource


@dataclass(frozen=True)
class CredentialsPolicy:
    region: str
    assume_role: bool = True
    duration_seconds: int = 3600
    # Fresh credentials are fetched once the served ones have less than this left.
    refresh_seconds: float = 300.0
    mapping: Mapping[str, RoleSource] = field(default_factory=dict)


class JobCredentials:
    """One job's credentials: fetched again, on the next request for them, once they are within
    ``refresh_seconds`` of expiring."""

    def __init__(
        self,
        role_arn: str,
        fetch: Callable[[], RoleCredentials],
        refresh_seconds: float,
        first: RoleCredentials | None = None,
    ) -> None:
        self.role_arn = role_arn
        self._fetch = fetch
        self._refresh_seconds = refresh_seconds
        self._current = first
        self._lock = threading.Lock()

    def current(self) -> RoleCredentials:
        """Raises ``CredentialsError`` when fresh ones were due and could not be had."""
        with self._lock:
            now = time.time()
            if self._current is None or now >= self._current.expiration - self._refresh_seconds:
                self._current = self._fetch()
            return self._current


def _mapped(source: RoleSource) -> Callable[[], RoleCredentials]:
    if source.keys is not None:
        keys = source.keys
        return lambda: RoleCredentials(
            keys.access_key_id,
            keys.secret_access_key,
            "",
            time.time() + STATIC_LIFETIME_SECONDS,
            "keys of TRAINFORGE_ROLE_CREDENTIALS",
        )
    return lambda: profile_credentials(source.profile)


def credentials_for(
    job: str, role_arn: str, policy: CredentialsPolicy
) -> tuple[JobCredentials | None, list[str]]:
    """The job's credentials (None: there are none to give) and the warnings for its log."""
    warnings: list[str] = []
    refused = ""
    if policy.assume_role:

        def assumed() -> RoleCredentials:
            return assume_role(role_arn, job, policy.duration_seconds, policy.region)

        try:
            first = assumed()
            return JobCredentials(role_arn, assumed, policy.refresh_seconds, first), warnings
        except CredentialsError as exc:
            refused = f"{exc}"
    source = policy.mapping.get(role_arn)
    if source is not None:
        fetch = _mapped(source)
        try:
            first = fetch()
        except CredentialsError as exc:
            warnings.append(
                f"The credentials TRAINFORGE_ROLE_CREDENTIALS names for {role_arn} cannot be "
                f"read: {exc}. The container gets no AWS credentials."
            )
            return None, warnings
        return JobCredentials(role_arn, fetch, policy.refresh_seconds, first), warnings
    why = refused or "AssumeRole is turned off (TRAINFORGE_ASSUME_ROLE=false)"
    try:
        own = own_credentials()
    except CredentialsError as exc:
        own = None
        why += f"; {exc}"
    if own is None:
        warnings.append(
            f"The container gets no AWS credentials: {why}, TRAINFORGE_ROLE_CREDENTIALS names "
            f"no credentials for {role_arn}, and trainforge has none of its own."
        )
        return None, warnings
    warnings.append(
        f"The container gets trainforge's own AWS credentials, not those of the role {role_arn}: "
        f"{why}. Map the role to a profile or keys in TRAINFORGE_ROLE_CREDENTIALS, or let "
        "trainforge's credentials assume it."
    )
    return JobCredentials(role_arn, own_credentials_or_fail, policy.refresh_seconds, own), warnings


class PendingCredentials:
    """A job's credentials, found (``credentials_for``) when they are first asked for: most jobs
    never call AWS, and finding them costs an STS round trip and the SDK it loads. ``warn``
    gets their warnings for the job's log then, before the first answer. ``current`` raises
    ``CredentialsError`` saying why when there are none to give (the endpoint answers 500 with
    it)."""

    def __init__(
        self, job: str, role_arn: str, policy: CredentialsPolicy, warn: Callable[[str], None]
    ) -> None:
        self.role_arn = role_arn
        self._job = job
        self._policy = policy
        self._warn = warn
        self._found: JobCredentials | None = None
        self._why = ""
        # Held while they are found: a second request waits for the first one's answer.
        self._lock = threading.Lock()

    def _find(self) -> None:
        try:
            self._found, warnings = credentials_for(self._job, self.role_arn, self._policy)
            if self._found is None:
                self._why = warnings[-1] if warnings else "The container gets no AWS credentials."
        except Exception as exc:  # a request must still get an answer, and the log a warning
            warnings = [f"The container gets no AWS credentials: finding them failed: {exc}"]
            self._why = warnings[0]
        for warning in warnings:
            self._warn(warning)

    def current(self) -> RoleCredentials:
        with self._lock:
            if self._found is None and not self._why:
                self._find()
        if self._found is None:
            raise CredentialsError(self._why)
        return self._found.current()


def own_credentials_or_fail() -> RoleCredentials:
    found = own_credentials()
    if found is None:
        raise CredentialsError("trainforge's own AWS credentials are gone")
    return found

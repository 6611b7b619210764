"""role_credentials: a job's credentials are fetched again once they are within the refresh
margin of expiring, and not before; aws_access: which S3 endpoints containers cannot reach."""

from __future__ import annotations

import time

import pytest

from trainforge.clients.sts import RoleCredentials
from trainforge.runtime.aws_access import is_loopback_url
from trainforge.runtime.role_credentials import JobCredentials


def test_credentials_are_fetched_again_only_within_the_refresh_margin() -> None:
    fetched: list[RoleCredentials] = []
    lifetime = [3600.0]

    def fetch() -> RoleCredentials:
        made = RoleCredentials(f"AK{len(fetched)}", "s", "t", time.time() + lifetime[0])
        fetched.append(made)
        return made

    job = JobCredentials("arn:aws:iam::1:role/r", fetch, refresh_seconds=300)
    first = job.current()
    assert job.current() is first
    assert len(fetched) == 1
    # Served credentials with less than the margin left are replaced on the next request.
    lifetime[0] = 100.0
    job = JobCredentials("arn:aws:iam::1:role/r", fetch, 300, fetch())
    assert job.current().access_key_id == "AK2"
    assert len(fetched) == 3


def test_secrets_stay_out_of_the_repr() -> None:
    shown = repr(RoleCredentials("AKID", "very-secret", "session-token", 0.0))
    assert "very-secret" not in shown and "session-token" not in shown


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:9000", True),
        ("http://127.8.0.1", True),
        ("http://localhost:9000", True),
        ("http://[::1]:9000", True),
        ("http://172.17.0.1:9000", False),
        ("https://s3.example.com", False),
    ],
)
def test_loopback_s3_endpoints(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback

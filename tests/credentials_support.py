"""Helpers for the credentials endpoint's tests: a job whose role's credentials are fixed, and a
container's request for them as the AWS SDKs' container-credentials provider makes it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from trainforge.clients.sts import RoleCredentials
from trainforge.runtime.role_credentials import JobCredentials

ROLE = "arn:aws:iam::000000000000:role/trainer"


def fixed_credentials(access_key_id: str) -> JobCredentials:
    served = RoleCredentials(access_key_id, "secret", "session", time.time() + 3600)
    return JobCredentials(ROLE, lambda: served, 300, served)


def ask(url: str, token: str) -> tuple[int, dict[str, Any]]:
    """GET ``url`` with ``token`` as the Authorization header: the status and the JSON answer."""
    request = urllib.request.Request(url, headers={"Authorization": token})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())

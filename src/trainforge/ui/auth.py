"""The dashboard's sessions and CSRF tokens. With access keys configured, a browser logs in with
an access key id and its secret and gets a session cookie (HttpOnly, SameSite=Strict, a random
token held only in this process's memory); without access keys (loopback only) every browser
shares one anonymous session. Either way, a change (Stop, run again) must carry the session's
CSRF token in a header, which a page of another origin can neither read nor send.
Knows nothing of HTTP frameworks or jobs.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from trainforge.settings import AccessKey

COOKIE = "trainforge_ui"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 1000


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, keys: tuple[AccessKey, ...], lifetime: float = SESSION_SECONDS) -> None:
        self._keys = keys
        self._lifetime = lifetime
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._anonymous = Session("", secrets.token_urlsafe(32), float("inf"))

    @property
    def required(self) -> bool:
        """Whether a browser must log in (the server has access keys)."""
        return bool(self._keys)

    def login(self, key_id: str, secret: str) -> str | None:
        """A new session's token for a right key id and secret, else None. Every key is
        compared, in constant time, so the answer's time tells nothing of which part was wrong."""
        matched = False
        for key in self._keys:
            same_id = hmac.compare_digest(key.access_key_id.encode(), key_id.encode())
            same_secret = hmac.compare_digest(key.secret_access_key.encode(), secret.encode())
            matched |= same_id and same_secret
        if not matched:
            return None
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            self._forget_expired(now)
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions, key=lambda t: self._sessions[t].expires)
                del self._sessions[oldest]
            self._sessions[token] = Session(key_id, secrets.token_urlsafe(32), now + self._lifetime)
        return token

    def logout(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def session(self, token: str | None) -> Session | None:
        """The session of a cookie's token; the anonymous one when no login is required."""
        if not self.required:
            return self._anonymous
        if not token:
            return None
        with self._lock:
            found = self._sessions.get(token)
            if found is None or found.expires < time.time():
                self._sessions.pop(token, None)
                return None
            return found

    @staticmethod
    def csrf_ok(session: Session, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(session.csrf.encode(), (sent or "").encode())

    def _forget_expired(self, now: float) -> None:
        for token in [t for t, s in self._sessions.items() if s.expires < now]:
            del self._sessions[token]

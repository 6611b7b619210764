"""The HTTP/1.1 connection handling under the ASGI app: uvicorn's httptools protocol, with the
limits it lacks. A connection must deliver its request headers within ``header_timeout`` seconds
of opening (or of its previous response) and its body within ``body_timeout`` seconds of its
headers, or it is closed; at most ``max_connections`` are open at once, and one more is answered
503 and closed. Each of these says so in the server log (at most once a minute per kind), so a
client that holds connections open without sending is seen, not silently served forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("trainforge.server")

_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\n"
    b"content-length: 41\r\n\r\ntrainforge: too many open connections.\r\n\r\n"
)


class _Notices:
    """Log lines that repeat at most once a minute per kind, with a count of what was held."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def say(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -self.every) < self.every:
            self._held[kind] = self._held.get(kind, 0) + 1
            return
        held = self._held.pop(kind, 0)
        self._last[kind] = now
        suffix = f" ({held} more like it since the last notice)" if held else ""
        log.warning(message + suffix, *args)


def guarded_protocol(
    header_timeout: float, body_timeout: float, max_connections: int
) -> type[HttpToolsProtocol]:
    notices = _Notices()

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None
        _refused = False

        def connection_made(self, transport: Any) -> None:
            if len(self.connections) >= max_connections:
                self._refused = True
                notices.say(
                    "cap",
                    "refusing a connection: %d connections are open, the limit "
                    "(TRAINFORGE_HTTP_MAX_CONNECTIONS) is %d",
                    len(self.connections),
                    max_connections,
                )
                transport.write(_REFUSED)
                transport.close()
                return
            super().connection_made(transport)
            self._arm(header_timeout, "its request headers")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._refused:
                return
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)

        def _arm(self, seconds: float, what: str) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._expire, seconds, what)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expire(self, seconds: float, what: str) -> None:
            self._timer = None
            if self.transport.is_closing():
                return
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            notices.say(
                f"slow {what}",
                "closing the connection of %s: it did not send %s within %g s",
                client,
                what,
                seconds,
            )
            self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm(header_timeout, "its request headers")

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._arm(body_timeout, "its request body")

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # The next request of a kept-alive connection has the header time again; uvicorn's
            # keep-alive timeout closes it first if it stays idle.
            if not self.transport.is_closing():
                self._arm(header_timeout, "its request headers")

    return GuardedHttpToolsProtocol

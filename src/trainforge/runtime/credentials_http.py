"""The HTTP face of the credentials endpoint (``runtime.credentials_endpoint``): the request
handler that answers a token with its job's credentials, the threaded server it runs in, and the
one JSON answer that the endpoint and the nodes' relays of it give.

It is imported only when a container first connects (``http.server``, and what it loads, would
otherwise cost every ``trainforge run`` its start-up time, also of the many jobs that never ask
for credentials). It holds no token and no credential of its own, and never logs a request.
"""

from __future__ import annotations

import json
import socket
import socketserver
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from trainforge.errors import CredentialsError

if TYPE_CHECKING:
    from trainforge.runtime.credentials_endpoint import CredentialsEndpoint


def send_json(handler: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
    """One JSON answer, as the endpoint and the nodes' relays of it give it."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class QuietServer(ThreadingHTTPServer):
    """A threaded HTTP server whose requests are never logged (they carry tokens)."""

    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer's own looks the address's name up (a reverse DNS query, which a slow
        # resolver makes last seconds) for a server_name nothing here uses.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Nothing of a request is logged (it carries a token)."""


class _EndpointServer(QuietServer):
    endpoint: CredentialsEndpoint


class _EndpointHandler(QuietHandler):
    server: _EndpointServer

    def _answer(self, status: int, body: dict[str, str]) -> None:
        send_json(self, status, json.dumps(body).encode())

    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "")
        job = self.server.endpoint.job_of(token)
        if job is None:
            self._answer(403, {"code": "AccessDenied", "message": "Unknown or expired token."})
            return
        try:
            found = job.current()
        except CredentialsError as exc:
            self._answer(500, {"code": "CredentialsUnavailable", "message": str(exc)})
            return
        self._answer(
            200,
            {
                "AccessKeyId": found.access_key_id,
                "SecretAccessKey": found.secret_access_key,
                "Token": found.session_token,
                "Expiration": _iso(found.expiration),
                "RoleArn": job.role_arn,
            },
        )


def endpoint_server(listener: socket.socket, endpoint: CredentialsEndpoint) -> QuietServer:
    """The endpoint's server on a socket that already listens (bound by the endpoint itself,
    so that its address and port were known before any container started)."""
    server = _EndpointServer(listener.getsockname()[:2], _EndpointHandler, False)
    server.socket.close()
    server.socket = listener
    server.server_address = listener.getsockname()
    server.endpoint = endpoint
    return server

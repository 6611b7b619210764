"""The credentials endpoint: an HTTP server of this process that hands each running job's
containers the credentials of the job's role, in the format ECS serves and every AWS SDK's
container-credentials provider reads (``AccessKeyId``, ``SecretAccessKey``, ``Token``,
``Expiration``, ``RoleArn``).

A job is opened with a fresh random token, written to a file that is bind-mounted read-only into
its containers and named by ``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE``, so ``docker inspect``
shows no secret; ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` names the endpoint. A request is answered
with the credentials of the one job whose token it carries, only while that job is open (from its
start to the end of its containers), found when they are first asked for; any other request
gets 403, and a job with no credentials to give gets 500 saying why. The SDKs
accept plain HTTP only from loopback or a few link-local addresses, so the endpoint listens on
one of those held by the machine (``runtime.linkaddress``): containers on a Docker bridge reach
it through their gateway.

This module never logs a request, a token or a credential.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hmac
import logging
import os
import select
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from trainforge.errors import CredentialsError
from trainforge.runtime.linkaddress import hold_address
from trainforge.runtime.role_credentials import JobCredentials, PendingCredentials

if TYPE_CHECKING:
    from trainforge.runtime.credentials_http import QuietServer

# Where the token file appears inside a container.
TOKEN_PATH = PurePosixPath("/etc/trainforge/aws-container-authorization-token")
ENV_FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
ENV_TOKEN_FILE = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
_PATH = "/v1/credentials"
log = logging.getLogger("trainforge.credentials")
# How often a listener that no container has reached yet looks whether it is to stop.
_IDLE_POLL_SECONDS = 0.5


class CredentialsEndpoint:
    """Started on the first ``open``. ``hold`` is how the address gets onto the machine when
    this process cannot add it itself (through the Docker engine); it raises
    ``CredentialsError``.

    ``relay``, for containers on other machines: given this endpoint's URL, has their machines
    answer at a link-local address by asking it, and returns the URL the containers use; it is
    asked at every ``open`` (a node may have joined) and raises ``CredentialsError``."""

    def __init__(
        self,
        address: str,
        port: int,
        token_dir: Path,
        hold: Callable[[str], None] | None = None,
        relay: Callable[[str], str] | None = None,
    ) -> None:
        self.address = address
        self.port = port
        self.token_dir = token_dir
        # Only the link-local address of the containers is ever added to this machine: an
        # address of the cluster's that this machine lacks is a wrong setting, not a job.
        self._may_hold = relay is None
        self._hold = hold
        self._relay = relay
        # One relay call at a time: the server's start and a first job may both ask.
        self._relay_lock = threading.Lock()
        self._container_url = ""
        # Listening from the first start; HTTP is served from a first connection on.
        self._listener: socket.socket | None = None
        self._server: QuietServer | None = None
        self._stopping = threading.Event()
        self._jobs: dict[str, tuple[str, JobCredentials | PendingCredentials]] = {}
        self._lock = threading.Lock()
        self._failure: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}{_PATH}"

    @property
    def container_url(self) -> str:
        """Where the job's containers ask: this endpoint, or their machine's relay of it."""
        return self._container_url or self.url

    def start(self) -> None:
        """Listen, holding the address first when the machine does not have it yet. Raises
        ``CredentialsError`` saying why it could not (and again, at once, on later calls)."""
        with self._lock:
            if self._listener is not None:
                return
            if self._failure is not None:
                raise CredentialsError(self._failure)
            try:
                listener = self._bind()
            except CredentialsError as exc:
                self._failure = str(exc)
                raise
            self.port = int(listener.getsockname()[1])
            self._listener = listener
            self._stopping = stopping = threading.Event()
        threading.Thread(
            target=self._serve,
            args=(listener, stopping),
            name="credentials-endpoint",
            daemon=True,
        ).start()

    def _serve(self, listener: socket.socket, stopping: threading.Event) -> None:
        # A container's first request waits in the listen backlog while HTTP is loaded.
        while not stopping.is_set():
            try:
                ready, _, _ = select.select([listener], [], [], _IDLE_POLL_SECONDS)
            except (OSError, ValueError):
                return  # closed by stop
            if ready:
                break
        try:
            from trainforge.runtime.credentials_http import endpoint_server

            with self._lock:
                if stopping.is_set():
                    return
                server = endpoint_server(listener, self)
                self._server = server
        except Exception:
            # Never a listener nobody serves (its callers would wait for ever): it goes, and the
            # next start says why.
            log.exception("The credentials endpoint cannot serve")
            with self._lock:
                self._failure = "the credentials endpoint could not serve (see the server's log)"
                self._listener = None
            listener.close()
            return
        # A stop from here on reaches serve_forever (its shutdown waits for the loop to run).
        server.serve_forever()

    def _listen(self, family: socket.AddressFamily) -> socket.socket:
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.address, self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        return listener

    def _bind(self) -> socket.socket:
        if not self.address:
            raise CredentialsError(
                "the address where the nodes reach this machine is unknown: set "
                "TRAINFORGE_SWARM_SERVER_ADDRESS"
            )
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        try:
            return self._listen(family)
        except OSError as exc:
            if exc.errno != errno.EADDRNOTAVAIL or not self._may_hold:
                raise CredentialsError(
                    f"the credentials endpoint cannot listen on {self.address}:{self.port}: {exc}"
                    + ("" if self._may_hold else " (set TRAINFORGE_SWARM_SERVER_ADDRESS)")
                ) from None
        self._hold_address()
        try:
            return self._listen(family)
        except OSError as exc:
            raise CredentialsError(
                f"the credentials endpoint cannot listen on {self.address}:{self.port}: {exc}"
            ) from None

    def _hold_address(self) -> None:
        try:
            hold_address(self.address)
            return
        except PermissionError:
            if self._hold is None:
                raise CredentialsError(
                    f"this machine does not hold {self.address} and trainforge may not add it "
                    "(it takes CAP_NET_ADMIN)"
                ) from None
        except OSError as exc:
            raise CredentialsError(f"{self.address} cannot be added: {exc}") from None
        self._hold(self.address)

    def prepare(self) -> None:
        """Listen, and have the containers' machines relay to here; called at every job's start
        and once ahead of the first (a relay takes seconds to start on a cluster's nodes)."""
        self.start()
        if self._relay is not None:
            with self._relay_lock:
                self._container_url = self._relay(self.url)

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            listener, self._listener = self._listener, None
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        elif listener is not None:
            # A shut-down listener refuses connections at once and wakes the select waiting on
            # it (close alone leaves it listening until that select returns).
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def open(self, job: str, credentials: JobCredentials | PendingCredentials) -> Path:
        """Start serving ``credentials`` to ``job``'s containers; returns the token file to
        mount at ``TOKEN_PATH``. A job opened again (a worker taking it over) keeps the token
        its containers already hold."""
        self.prepare()
        directory = self.token_dir / job
        token_file = directory / "token"
        token = token_file.read_text().strip() if token_file.is_file() else ""
        if not token:
            # secrets.token_urlsafe(32), without loading the random module it brings along.
            token = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode("ascii")
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Readable by whatever user the container runs as; the directory keeps it from
            # this machine's other users.
            written = directory / "token.new"
            written.write_text(token)
            os.chmod(written, 0o444)
            written.replace(token_file)
        with self._lock:
            self._jobs[job] = (token, credentials)
        return token_file

    def close(self, job: str) -> None:
        """The job's token is refused from now on and its file goes."""
        with self._lock:
            self._jobs.pop(job, None)
        shutil.rmtree(self.token_dir / job, ignore_errors=True)

    def job_of(self, token: str) -> JobCredentials | PendingCredentials | None:
        if not token:
            return None
        with self._lock:
            jobs = list(self._jobs.values())
        found = None
        for known, credentials in jobs:
            if hmac.compare_digest(known.encode(), token.encode()):
                found = credentials
        return found

"""How trainforge reaches a Docker engine: ``SocketTransport``, ``http.client`` on a local
engine's unix socket (one connection per request), and ``DockerPyTransport``, docker-py's client
(an engine on TCP with TLS, or SSH). Both answer the calls of a job's run as decoded JSON or a
stream of chunks, and raise ``ApiError`` (the engine said no) or ``Unreachable`` (no engine to
say anything). docker-py (with requests and urllib3) costs about a tenth of a second to import,
so it is imported only where it is used.

Nothing here knows what a call means: that is ``dockerapi``'s other modules'.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from trainforge.errors import TrainforgeError

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Log streams are read in large chunks (docker-py reads each frame with two small reads).
READ_CHUNK = 256 * 1024


class Missing(TrainforgeError):
    """The object asked for does not exist (HTTP 404)."""


def connection_errors() -> tuple[type[Exception], ...]:
    """docker-py's failures to reach the engine (imported with docker-py, where it is used)."""
    import docker.errors
    import requests.exceptions

    return (requests.exceptions.ConnectionError, docker.errors.DockerException)


class ApiError(TrainforgeError):
    """The engine answered with an error status; ``explanation`` is its message."""

    def __init__(self, status: int, explanation: str) -> None:
        super().__init__(f"{status} {explanation}")
        self.status = status
        self.explanation = explanation


class Unreachable(TrainforgeError):
    """The engine could not be reached (or went away in the middle of an answer);
    ``first_contact``: on the first call, when whether there is an engine at all is unknown."""

    first_contact = False


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def error_message(data: bytes) -> str:
    """The engine's error message, as docker-py reads it (its JSON ``message``, else the text)."""
    try:
        return str(json.loads(data)["message"])
    except (ValueError, KeyError, TypeError):
        return data.decode("utf-8", "replace").strip()


class Transport:
    """The Engine API calls a job's run makes: ``call`` answers the decoded JSON (None for an
    empty answer) or raises ``ApiError``/``Unreachable``; ``stream`` answers the body in
    chunks as they come (None for 404). ``timeout`` None: no timeout (waiting, following)."""

    def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = -1.0,
    ) -> Any:
        raise NotImplementedError

    def stream(self, path: str, params: Mapping[str, str]) -> Iterator[bytes] | None:
        raise NotImplementedError


class SocketTransport(Transport):
    """``http.client`` on the engine's unix socket, one connection per request (a unix socket
    connects in microseconds, and no connection is shared between threads). The API version
    is the engine's own, asked once, as docker-py's ``version="auto"`` and the Docker CLI do."""

    def __init__(self, path: str, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._version: str | None = None
        self._lock = threading.Lock()

    def _send(
        self, method: str, url: str, body: Any, timeout: float | None
    ) -> tuple[UnixConnection, http.client.HTTPResponse]:
        connection = UnixConnection(self._path, self._timeout if timeout == -1.0 else timeout)
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, url, body=data, headers=headers)
            return connection, connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise Unreachable(f"{exc.__class__.__name__}: {exc}") from exc

    def _read(self, connection: UnixConnection, response: http.client.HTTPResponse) -> bytes:
        try:
            return response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(f"{exc.__class__.__name__}: {exc}") from exc
        finally:
            connection.close()

    def version(self) -> str:
        with self._lock:
            if self._version is None:
                self._version = self._ask_version()
            return self._version

    def _ask_version(self) -> str:
        # The engine names its API version in every ping's headers, as the Docker CLI reads
        # it: a ping is answered in a tenth of the time /version takes, which a job's start
        # waits on. An engine whose ping lacks the header is asked /version.
        try:
            connection, response = self._send("GET", "/_ping", None, -1.0)
            data = self._read(connection, response)
            if response.status < 400 and response.getheader("Api-Version"):
                return str(response.getheader("Api-Version"))
            connection, response = self._send("GET", "/version", None, -1.0)
            data = self._read(connection, response)
        except Unreachable as exc:
            exc.first_contact = True
            raise
        if response.status >= 400:
            raise ApiError(response.status, error_message(data))
        return str(json.loads(data)["ApiVersion"])

    def _url(self, path: str, params: Mapping[str, str] | None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"/v{self.version()}{path}{query}"

    def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = -1.0,
    ) -> Any:
        connection, response = self._send(method, self._url(path, params), body, timeout)
        data = self._read(connection, response)
        if response.status >= 400:
            raise ApiError(response.status, error_message(data))
        return json.loads(data) if data.strip() else None

    def stream(self, path: str, params: Mapping[str, str]) -> Iterator[bytes] | None:
        connection, response = self._send("GET", self._url(path, params), None, None)
        if response.status >= 400:
            data = self._read(connection, response)
            if response.status == 404:
                return None
            raise ApiError(response.status, error_message(data))
        return self._chunks(connection, response)

    @staticmethod
    def _chunks(connection: UnixConnection, response: http.client.HTTPResponse) -> Iterator[bytes]:
        try:
            while True:
                try:
                    chunk = response.read1(READ_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise Unreachable(f"{exc.__class__.__name__}: {exc}") from exc
                if not chunk:
                    return
                yield chunk
        finally:
            connection.close()


class DockerPyTransport(Transport):
    """The same calls through docker-py's client: an engine on TCP (TLS) or SSH."""

    def __init__(self, api: Callable[[], Any]) -> None:
        self._api = api

    def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = -1.0,
    ) -> Any:
        import docker.errors

        api = self._api()
        url = f"{api.base_url}/v{api.api_version}{path}"
        options: dict[str, Any] = {"params": dict(params or {})}
        if timeout != -1.0:
            options["timeout"] = timeout
        if body is not None:
            options["data"] = json.dumps(body)
            options["headers"] = {"Content-Type": "application/json"}
        try:
            response = api._result(getattr(api, f"_{method.lower()}")(url, **options), False)
        except docker.errors.APIError as exc:
            raise ApiError(exc.status_code or 500, str(exc.explanation or exc)) from exc
        except connection_errors() as exc:
            raise Unreachable(str(exc)) from exc
        return json.loads(response) if response.strip() else None

    def stream(self, path: str, params: Mapping[str, str]) -> Iterator[bytes] | None:
        api = self._api()
        url = f"{api.base_url}/v{api.api_version}{path}"
        try:
            response = api.get(url, params=dict(params), stream=True, timeout=None)
        except connection_errors() as exc:
            raise Unreachable(str(exc)) from exc
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code >= 400:
            text = response.text
            response.close()
            raise ApiError(response.status_code, text.strip())
        return self._chunks(response)

    @staticmethod
    def _chunks(response: Any) -> Iterator[bytes]:
        try:
            yield from response.iter_content(READ_CHUNK)
        except connection_errors() as exc:
            raise Unreachable(str(exc)) from exc
        finally:
            response.close()


def socket_path(url: str) -> str | None:
    """The path of a ``unix://`` engine address (None for any other)."""
    if url.startswith("unix://"):
        return url[len("unix://") :] or None
    return None

"""The ground every Engine API call of trainforge stands on: which engine (``DOCKER_HOST``, or
the local socket), the transport to it, docker-py's client where only it will do, and how a
failed call reads (``Missing`` for a 404, ``EngineError`` with what was being done for anything
else). ``EngineCalls`` is the base of ``DockerApi``'s parts (containers, images, the swarm's
services); it also reads log streams, which containers and services share.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from trainforge.engines.base import LogLine
from trainforge.engines.dockerapi.logstream import log_lines
from trainforge.engines.dockerapi.transport import (
    DEFAULT_HOST,
    ApiError,
    DockerPyTransport,
    Missing,
    SocketTransport,
    Transport,
    Unreachable,
    connection_errors,
    socket_path,
)
from trainforge.errors import EngineError

T = TypeVar("T")


class EngineCalls:
    """One engine: ``client`` (docker-py's, given) or ``base_url`` name it, else DOCKER_HOST or
    the local socket."""

    def __init__(self, client: Any = None, base_url: str | None = None, timeout: int = 120) -> None:
        self._client = client
        self._base_url = base_url
        self._timeout = timeout
        self._lock = threading.Lock()
        self._info: dict[str, Any] | None = None
        self._info_lock = threading.Lock()
        # A prefetch is under way: a second caller (placement, then the image) starts none.
        self._info_asked = threading.Event()
        path = socket_path(self._address()) if client is None else None
        self._transport: Transport = (
            SocketTransport(path, timeout) if path else DockerPyTransport(lambda: self.api)
        )

    def _address(self) -> str:
        return self._base_url or os.environ.get("DOCKER_HOST") or DEFAULT_HOST

    @property
    def api(self) -> Any:
        """docker-py's low-level client, connected on first use: commands that never touch a
        container must not need a running engine."""
        if self._client is None:
            import docker

            with self._lock:
                if self._client is None:
                    try:
                        if self._base_url:
                            self._client = docker.DockerClient(
                                base_url=self._base_url, version="auto", timeout=self._timeout
                            )
                        else:
                            self._client = docker.from_env(version="auto", timeout=self._timeout)
                    except connection_errors() as exc:
                        raise self._unreachable(exc) from exc
        return self._client.api

    def _unreachable(self, exc: Exception) -> EngineError:
        return EngineError(
            f"Cannot reach the Docker engine at {self._address()}: {exc}. Is Docker "
            "running, and may this user use it?"
        )

    def describe(self) -> str:
        return f"Docker at {self._address()}"

    def fail(self, action: str, exc: Exception) -> EngineError:
        import docker.errors

        if isinstance(exc, Unreachable):
            return EngineError(
                f"Cannot reach the Docker engine ({self.describe()}) to {action}: {exc}"
            )
        if isinstance(exc, ApiError):
            return EngineError(f"Docker could not {action}: {exc.explanation or exc}")
        if isinstance(exc, connection_errors()) and not isinstance(exc, docker.errors.APIError):
            return EngineError(
                f"Cannot reach the Docker engine ({self.describe()}) to {action}: {exc}"
            )
        if isinstance(exc, docker.errors.APIError):
            return EngineError(f"Docker could not {action}: {exc.explanation or exc}")
        return EngineError(f"Docker could not {action}: {exc}")

    def call(self, action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """One docker-py call: 404 becomes ``Missing``, anything else that fails
        ``EngineError``."""
        import docker.errors

        try:
            return fn(*args, **kwargs)
        except docker.errors.NotFound as exc:
            raise Missing(str(exc)) from exc
        except connection_errors() as exc:
            raise self.fail(action, exc) from exc

    def quietly(self, action: str, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """A docker-py call whose "already gone" (404) and "already doing it" (409) answers
        mean done."""
        import docker.errors

        try:
            fn(*args, **kwargs)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise self.fail(action, exc) from exc
        except connection_errors() as exc:
            raise self.fail(action, exc) from exc

    def request(
        self,
        action: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: float | None = -1.0,
    ) -> Any:
        """One call of a job's run (``Transport``): 404 becomes ``Missing``, anything else
        that fails ``EngineError``."""
        try:
            return self._transport.call(method, path, params, body, timeout)
        except ApiError as exc:
            if exc.status == 404:
                raise Missing(exc.explanation) from exc
            raise self.fail(action, exc) from exc
        except Unreachable as exc:
            raise (self._unreachable(exc) if exc.first_contact else self.fail(action, exc)) from exc

    def request_quietly(
        self, action: str, method: str, path: str, params: Mapping[str, str] | None = None
    ) -> None:
        """``request`` whose "already gone" (404) and "already doing it" (409) mean done."""
        try:
            self.request(action, method, path, params)
        except Missing:
            pass
        except EngineError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, ApiError) and cause.status == 409):
                raise

    def info(self) -> dict[str, Any]:
        # One asking at a time: a caller that comes while it is asked waits for its answer.
        with self._info_lock:
            if self._info is None:
                self._info = dict(self.request("read the engine's information", "GET", "/info"))
            return self._info

    def prefetch_info(self) -> None:
        """Ask for the engine's information (its CPU count, which a container's CPU limit
        needs) on a thread of its own, while the caller does other work; ``info`` then waits
        for that answer instead of asking again. A failure here is left for ``info`` to meet."""
        if self._info is not None or self._info_asked.is_set():
            return
        self._info_asked.set()

        def ask() -> None:
            try:
                with contextlib.suppress(EngineError, Missing):
                    self.info()
            finally:
                # A failed one may be tried again by the next caller.
                self._info_asked.clear()

        threading.Thread(target=ask, name="docker-info", daemon=True).start()

    def version(self) -> dict[str, Any]:
        """The engine's own account of itself: ``Version``, ``ApiVersion``, ``Os``, ..."""
        return dict(self.request("read the engine's version", "GET", "/version"))

    def cpus(self) -> float:
        return float(self.info().get("NCPU") or os.cpu_count() or 1)

    def remove_container(self, container_id: str) -> None:
        self.request_quietly(
            "remove a container", "DELETE", f"/containers/{container_id}", {"force": "1"}
        )

    def read_log(self, path: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        """Read a log endpoint in large chunks and split Docker's multiplexed frames here:
        docker-py reads each frame with two small reads, which costs more than the rest of a
        line's way to the store together."""
        params = {"stdout": "1", "stderr": "1", "timestamps": "1", "follow": str(int(follow))}
        if since_ns > 0:
            params["since"] = f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"
        action = "read a container's logs"
        try:
            chunks = self._transport.stream(path, params)
        except ApiError as exc:
            raise EngineError(f"Docker could not {action}: {exc.explanation}") from exc
        except Unreachable as exc:
            raise self.fail(action, exc) from exc
        if chunks is None:
            return
        try:
            yield from log_lines(chunks)
        except Unreachable as exc:
            raise self.fail(action, exc) from exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

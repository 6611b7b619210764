"""The Docker Engine API: the only module of trainforge that talks to Docker (and imports
``docker``). The local engine (``engines.docker``) and the Swarm engine (``engines.swarm``) both
speak to Docker through it; it turns the engine's errors into ``EngineError``, ``ImageNotFound``
and ``ContainerStartError`` with messages a user can act on.

What a job's run asks of the engine (inspect the image, create, start, wait for, inspect, list,
signal, read the logs of and remove containers) goes through ``_Transport``: with a local engine
(a unix socket, the common case) that is ``http.client`` on the socket, one connection per
request; otherwise docker-py's client. docker-py (with requests and urllib3) costs about a tenth
of a second to import, which ``trainforge run`` of a short job would pay before its container
starts; it is imported when something only it does is asked for (pulling, building, probing an
image, networks, the swarm) or the engine is not on a unix socket.

Containers' log options are set here, never left to the daemon's defaults: a daemon configured
to rotate json-file logs (``max-size=10m``) rotates faster than a reader follows a chatty job,
and every line a rotation drops is lost to the job's log. trainforge's containers log to a
json-file that is not rotated while they run; the file goes with the container.
"""

from __future__ import annotations

import base64
import calendar
import contextlib
import http.client
import io
import json
import os
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

from trainforge.domain.images import DOCKER_HUB, ImageSource, RegistryAuth, registry_of, split_tag
from trainforge.engines.base import (
    ImageContents,
    ImageInfo,
    LogLine,
    Mount,
    MountKind,
    SourceOf,
)
from trainforge.errors import ContainerStartError, EngineError, ImageNotFound

if TYPE_CHECKING:
    import docker.types

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DEFAULT_HOST = "unix:///var/run/docker.sock"
# json-file cannot be told "never rotate" once the daemon sets max-size; a size no job writes
# says the same. One file: nothing is ever rotated away.
LOG_OPTIONS = {"max-size": "1000g", "max-file": "1"}
LOG_DRIVER = "json-file"
# The labels trainforge puts on what it makes, on one engine or a swarm: how a restarted worker
# finds a job's hosts again, and tells this home's from another's.
JOB_LABEL = "trainforge.job"
HOME_LABEL = "trainforge.instance"
HOST_LABEL = "trainforge.host"
STREAM_LABEL = "trainforge.stream"
T = TypeVar("T")


class Missing(Exception):
    """The object asked for does not exist (HTTP 404)."""


def _connection_errors() -> tuple[type[Exception], ...]:
    """docker-py's failures to reach the engine (imported with docker-py, where it is used)."""
    import docker.errors
    import requests.exceptions

    return (requests.exceptions.ConnectionError, docker.errors.DockerException)


class _ApiError(Exception):
    """The engine answered with an error status; ``explanation`` is its message."""

    def __init__(self, status: int, explanation: str) -> None:
        super().__init__(f"{status} {explanation}")
        self.status = status
        self.explanation = explanation


class _Unreachable(Exception):
    """The engine could not be reached (or went away in the middle of an answer);
    ``first_contact``: on the first call, when whether there is an engine at all is unknown."""

    first_contact = False


class _UnixConnection(http.client.HTTPConnection):
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


def _explanation(data: bytes) -> str:
    """The engine's error message, as docker-py reads it (its JSON ``message``, else the text)."""
    try:
        return str(json.loads(data)["message"])
    except (ValueError, KeyError, TypeError):
        return data.decode("utf-8", "replace").strip()


class _Transport:
    """The Engine API calls a job's run makes: ``call`` answers the decoded JSON (None for an
    empty answer) or raises ``_ApiError``/``_Unreachable``; ``stream`` answers the body in
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


class _SocketTransport(_Transport):
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
    ) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        connection = _UnixConnection(self._path, self._timeout if timeout == -1.0 else timeout)
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
            raise _Unreachable(f"{exc.__class__.__name__}: {exc}") from exc

    def _read(self, connection: _UnixConnection, response: http.client.HTTPResponse) -> bytes:
        try:
            return response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise _Unreachable(f"{exc.__class__.__name__}: {exc}") from exc
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
        except _Unreachable as exc:
            exc.first_contact = True
            raise
        if response.status >= 400:
            raise _ApiError(response.status, _explanation(data))
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
            raise _ApiError(response.status, _explanation(data))
        return json.loads(data) if data.strip() else None

    def stream(self, path: str, params: Mapping[str, str]) -> Iterator[bytes] | None:
        connection, response = self._send("GET", self._url(path, params), None, None)
        if response.status >= 400:
            data = self._read(connection, response)
            if response.status == 404:
                return None
            raise _ApiError(response.status, _explanation(data))
        return self._chunks(connection, response)

    @staticmethod
    def _chunks(connection: _UnixConnection, response: http.client.HTTPResponse) -> Iterator[bytes]:
        try:
            while True:
                try:
                    chunk = response.read1(_READ_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Unreachable(f"{exc.__class__.__name__}: {exc}") from exc
                if not chunk:
                    return
                yield chunk
        finally:
            connection.close()


class _DockerPyTransport(_Transport):
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
            raise _ApiError(exc.status_code or 500, str(exc.explanation or exc)) from exc
        except _connection_errors() as exc:
            raise _Unreachable(str(exc)) from exc
        return json.loads(response) if response.strip() else None

    def stream(self, path: str, params: Mapping[str, str]) -> Iterator[bytes] | None:
        api = self._api()
        url = f"{api.base_url}/v{api.api_version}{path}"
        try:
            response = api.get(url, params=dict(params), stream=True, timeout=None)
        except _connection_errors() as exc:
            raise _Unreachable(str(exc)) from exc
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code >= 400:
            text = response.text
            response.close()
            raise _ApiError(response.status_code, text.strip())
        return self._chunks(response)

    @staticmethod
    def _chunks(response: Any) -> Iterator[bytes]:
        try:
            yield from response.iter_content(_READ_CHUNK)
        except _connection_errors() as exc:
            raise _Unreachable(str(exc)) from exc
        finally:
            response.close()


def _socket_path(url: str) -> str | None:
    """The path of a ``unix://`` engine address (None for any other)."""
    if url.startswith("unix://"):
        return url[len("unix://") :] or None
    return None


def parse_timestamp_ns(text: str) -> int:
    """Docker's RFC 3339 timestamps (``2026-11-26T12:30:54.123456789Z``) to epoch nanoseconds."""
    date, _, rest = text.partition("T")
    clock = rest.rstrip("Z")
    offset = 0
    for sign in ("+", "-"):
        if sign in clock:
            clock, _, zone = clock.partition(sign)
            hours, _, minutes = zone.partition(":")
            offset = (int(hours) * 3600 + int(minutes or 0) * 60) * (1 if sign == "+" else -1)
            break
    hms, _, fraction = clock.partition(".")
    year, month, day = (int(p) for p in date.split("-"))
    hour, minute, second = (int(p) for p in hms.split(":"))
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0")[:9])


def parse_time(text: str | None) -> float | None:
    """An RFC 3339 time as epoch seconds; None for Docker's zero time."""
    if not text or text.startswith("0001-"):
        return None
    try:
        return parse_timestamp_ns(text) / 1e9
    except ValueError:
        return None


def label_filter(labels: Mapping[str, str]) -> dict[str, list[str]]:
    return {"label": [f"{k}={v}" for k, v in labels.items()]}


class DockerApi:
    def __init__(self, client: Any = None, base_url: str | None = None, timeout: int = 120) -> None:
        self._client = client
        self._base_url = base_url
        self._timeout = timeout
        self._lock = threading.Lock()
        self._info: dict[str, Any] | None = None
        self._info_lock = threading.Lock()
        path = _socket_path(self._address()) if client is None else None
        self._transport: _Transport = (
            _SocketTransport(path, timeout) if path else _DockerPyTransport(lambda: self.api)
        )

    def _address(self) -> str:
        return self._base_url or os.environ.get("DOCKER_HOST") or _DEFAULT_HOST

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
                    except _connection_errors() as exc:
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

        if isinstance(exc, _Unreachable):
            return EngineError(
                f"Cannot reach the Docker engine ({self.describe()}) to {action}: {exc}"
            )
        if isinstance(exc, _ApiError):
            return EngineError(f"Docker could not {action}: {exc.explanation or exc}")
        if isinstance(exc, _connection_errors()) and not isinstance(exc, docker.errors.APIError):
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
        except _connection_errors() as exc:
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
        except _connection_errors() as exc:
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
        """One call of a job's run (``_Transport``): 404 becomes ``Missing``, anything else
        that fails ``EngineError``."""
        try:
            return self._transport.call(method, path, params, body, timeout)
        except _ApiError as exc:
            if exc.status == 404:
                raise Missing(exc.explanation) from exc
            raise self.fail(action, exc) from exc
        except _Unreachable as exc:
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
            if not (isinstance(cause, _ApiError) and cause.status == 409):
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
        if self._info is not None:
            return

        def ask() -> None:
            with contextlib.suppress(EngineError, Missing):
                self.info()

        threading.Thread(target=ask, name="docker-info", daemon=True).start()

    def version(self) -> dict[str, Any]:
        """The engine's own account of itself: ``Version``, ``ApiVersion``, ``Os``, ..."""
        return dict(self.request("read the engine's version", "GET", "/version"))

    def cpus(self) -> float:
        return float(self.info().get("NCPU") or os.cpu_count() or 1)

    # -- images --------------------------------------------------------------------------------

    def _inspect_image(self, ref: str) -> dict[str, Any]:
        path = f"/images/{quote(ref, safe='/:')}/json"
        return dict(self.request(f"inspect the image {ref}", "GET", path))

    def image(self, ref: str, source: SourceOf | None = None) -> ImageInfo:
        try:
            data = self._inspect_image(ref)
        except EngineError as exc:
            if "invalid reference format" in str(exc):
                raise ImageNotFound(
                    f"The training image {ref} is not a valid image reference."
                ) from exc
            raise
        except Missing:
            self._pull(ref, source() if source is not None else ImageSource(ref))
            try:
                data = self._inspect_image(ref)
            except Missing as exc:
                raise ImageNotFound(f"The training image {ref} is not on this machine.") from exc
        config = data.get("Config") or {}
        env = dict(item.split("=", 1) for item in config.get("Env") or [] if "=" in item)
        entrypoint = config.get("Entrypoint")
        cmd = config.get("Cmd")
        return ImageInfo(
            id=data["Id"],
            entrypoint=tuple(entrypoint) if entrypoint else None,
            cmd=tuple(cmd) if cmd else None,
            env=env,
        )

    def _pull(self, ref: str, source: ImageSource) -> None:
        """Pull ``source.ref`` with its login (or the Docker client configuration's), and name
        it ``ref`` when it came from elsewhere."""
        import docker.errors

        repository, tag = split_tag(source.ref)
        registry = registry_of(source.ref)
        try:
            self.api.pull(
                repository,
                tag=tag or ("latest" if "@" not in source.ref else None),
                auth_config=registry_auth(source.auth),
            )
            if source.ref != ref:
                named, named_tag = split_tag(ref)
                self.api.tag(source.ref, named, named_tag)
        except docker.errors.APIError as exc:
            answer = exc.explanation or exc
            if registry == DOCKER_HUB:
                raise ImageNotFound(
                    f"The training image {ref} is not on this machine and pulling it failed: "
                    f"{answer}. Build it or load it into Docker first."
                ) from exc
            where = f" (pulled as {source.ref})" if source.ref != ref else ""
            raise ImageNotFound(
                f"The training image {ref} could not be pulled from {registry}{where}: {answer}"
            ) from exc
        except _connection_errors() as exc:
            raise self.fail(f"pull the image {ref}", exc) from exc

    def probe_image(self, ref: str, list_dir: str, executable: str) -> ImageContents:
        """Look into the image's own filesystem (no mounts) through a created, never started,
        container: the first names under ``list_dir`` and whether ``executable`` is on PATH."""
        info = self.image(ref)
        action = f"inspect the image {ref}"
        probe = self.call(
            action,
            self.api.create_container,
            ref,
            entrypoint=["/trainforge-probe"],
            labels={"trainforge.probe": "1"},
        )
        try:
            return ImageContents(
                entries_under=tuple(self._names_under(probe["Id"], list_dir)),
                on_path=self._on_path(probe["Id"], executable, info.env.get("PATH")),
            )
        except _connection_errors() as exc:
            raise self.fail(action, exc) from exc
        finally:
            self.remove_container(probe["Id"])

    def _names_under(self, container_id: str, path: str, limit: int = 10) -> list[str]:
        import docker.errors

        try:
            stream, _ = self.api.get_archive(container_id, path, chunk_size=64 * 1024)
        except docker.errors.NotFound:
            return []
        head = b""
        for chunk in stream:
            head = chunk
            break
        names: list[str] = []
        try:
            with tarfile.open(fileobj=io.BytesIO(head), mode="r|") as tar:
                for member in tar:
                    # The first member is the directory itself.
                    if "/" in member.name.rstrip("/"):
                        names.append(member.name.split("/", 1)[1])
                    if len(names) >= limit:
                        break
        except (tarfile.TarError, EOFError):
            pass
        return names

    def _on_path(self, container_id: str, name: str, path_env: str | None) -> bool:
        for directory in (path_env or _DEFAULT_PATH).split(":"):
            if not directory:
                continue
            response = self.api.head(
                self.api._url("/containers/{0}/archive", container_id),
                params={"path": f"{directory.rstrip('/')}/{name}"},
            )
            if response.status_code != 200:
                continue
            header = response.headers.get("X-Docker-Container-Path-Stat")
            if not header:
                return True
            stat = json.loads(base64.b64decode(header))
            if stat.get("linkTarget") or int(stat.get("mode", 0)) & 0o111:
                return True
        return False

    def build_image(self, context: str, tag: str) -> str:
        """Build ``context`` (a directory with a Dockerfile) as ``tag``; its image id."""
        action = f"build the image {tag}"
        try:
            output = list(self.api.build(path=context, tag=tag, rm=True, decode=True))
        except _connection_errors() as exc:
            raise self.fail(action, exc) from exc
        errors = [str(item["error"]).strip() for item in output if "error" in item]
        if errors:
            raise EngineError(f"Docker could not {action}: {errors[-1]}")
        return str(self.call(action, self.api.inspect_image, tag)["Id"])

    def run_once(
        self,
        image: str,
        command: Sequence[str],
        gpu_ids: Sequence[str] = (),
        host_network_admin: bool = False,
    ) -> tuple[int, str]:
        """Run ``command`` in a container of ``image`` to its end: its exit code and output.
        With ``gpu_ids``, those GPUs are given to it as a training container gets them.
        ``host_network_admin``: on the machine's own network, with CAP_NET_ADMIN (and nothing
        else privileged), to change that network."""
        import docker.types

        action = f"run {image}"
        host_config = None
        if gpu_ids:
            host_config = self.api.create_host_config(
                device_requests=[
                    docker.types.DeviceRequest(device_ids=list(gpu_ids), capabilities=[["gpu"]])
                ]
            )
        elif host_network_admin:
            host_config = self.api.create_host_config(network_mode="host", cap_add=["NET_ADMIN"])
        container = self.call(
            action,
            self.api.create_container,
            image,
            entrypoint=list(command),
            command=[],
            host_config=host_config,
        )
        try:
            self.call(action, self.api.start, container["Id"])
            result = self.call(action, self.api.wait, container["Id"], timeout=120)
            output = self.call(action, self.api.logs, container["Id"], stdout=True, stderr=True)
            return int(result.get("StatusCode", 1)), bytes(output).decode("utf-8", "replace")
        except EngineError as exc:
            # It could not even start (no such executable, say): that is its answer.
            return 127, str(exc)
        finally:
            self.remove_container(container["Id"])

    def remove_image(self, ref: str) -> None:
        self.quietly(f"remove the image {ref}", self.api.remove_image, ref, force=True)

    # -- networks ------------------------------------------------------------------------------

    def create_network(
        self,
        name: str,
        labels: Mapping[str, str],
        internal: bool,
        driver: str = "bridge",
        attachable: bool = False,
    ) -> None:
        action = f"create the network {name}"
        existing = self.call(action, self.api.networks, names=[name])
        if any(n.get("Name") == name for n in existing):
            return
        options = {}
        if internal and driver == "bridge":
            # An internal bridge still gives the machine an address on it, and traffic to the
            # machine's own addresses is never forwarded, so an internal network alone leaves
            # every service of the machine reachable. Without that address the containers
            # reach only each other.
            options["com.docker.network.bridge.inhibit_ipv4"] = "true"
        self.call(
            action,
            self.api.create_network,
            name,
            driver=driver,
            labels=dict(labels),
            internal=internal,
            attachable=attachable,
            options=options or None,
            check_duplicate=True,
        )

    def remove_networks(self, labels: Mapping[str, str]) -> None:
        action = "remove a job's network"
        params = {"filters": json.dumps(label_filter(labels))}
        for network in self.request(action, "GET", "/networks", params):
            self.request_quietly(action, "DELETE", f"/networks/{network['Id']}")

    # -- swarm ---------------------------------------------------------------------------------

    def swarm_nodes(self) -> list[dict[str, Any]]:
        return list(self.call("list the swarm's nodes", self.api.nodes))

    def create_service(
        self,
        *,
        name: str,
        image: str,
        entrypoint: Sequence[str] | None,
        command: Sequence[str] | None,
        env: Mapping[str, str],
        labels: Mapping[str, str],
        mounts: Sequence[Mount],
        node: str | None,
        hostname: str | None = None,
        network: str | None = None,
        aliases: Sequence[str] = (),
        cpus: float | None = None,
        memory_bytes: int | None = None,
        shm_bytes: int | None = None,
        grace_seconds: float = 10.0,
        dns: Sequence[str] = (),
        auth: RegistryAuth | None = None,
        secrets: Sequence[tuple[str, str, PurePosixPath]] = (),
    ) -> str:
        """One single-replica service that runs once (no restarts), pinned to ``node``: the
        swarm form of one container. Swarm's ``Command`` replaces the image's ENTRYPOINT and
        ``Args`` its CMD, as ``--entrypoint`` and trailing arguments do for ``docker run``.
        ``auth`` goes with the service as ``docker service create --with-registry-auth`` sends
        it (X-Registry-Auth), so the node the task lands on pulls the image with it.
        ``secrets``: (id, name, path in the container) of swarm secrets it reads, read-only for
        every user."""
        import docker.types

        all_mounts = [docker_mount(m) for m in mounts]
        if shm_bytes:
            # Services have no --shm-size: a tmpfs over /dev/shm is the same thing.
            all_mounts.append(
                docker.types.Mount("/dev/shm", None, type="tmpfs", tmpfs_size=int(shm_bytes))
            )
        spec = docker.types.ContainerSpec(
            image,
            command=list(entrypoint) if entrypoint is not None else None,
            args=list(command) if command is not None else None,
            hostname=hostname,
            env=dict(env),
            labels=dict(labels),
            mounts=all_mounts,
            stop_grace_period=int(grace_seconds * 1e9),
            dns_config=docker.types.DNSConfig(nameservers=list(dns)) if dns else None,
            secrets=[
                docker.types.SecretReference(secret_id, name, filename=str(path), mode=0o444)
                for secret_id, name, path in secrets
            ]
            or None,
        )
        template = docker.types.TaskTemplate(
            spec,
            resources=docker.types.Resources(
                cpu_limit=int(cpus * 1e9) if cpus else None,
                mem_limit=int(memory_bytes) if memory_bytes else None,
            ),
            restart_policy=docker.types.RestartPolicy(condition="none"),
            placement=docker.types.Placement(constraints=[f"node.id=={node}"] if node else None),
            log_driver=docker.types.DriverConfig(LOG_DRIVER, dict(LOG_OPTIONS)),
            networks=[docker.types.NetworkAttachmentConfig(network, aliases=list(aliases))]
            if network
            else None,
        )
        mode = docker.types.ServiceMode("replicated", replicas=1)
        endpoint = docker.types.EndpointSpec(mode="dnsrr")
        action = f"create the service {name}"
        if auth is None:
            created = self.call(
                action,
                self.api.create_service,
                template,
                name=name,
                labels=dict(labels),
                mode=mode,
                endpoint_spec=endpoint,
            )
        else:
            created = self.call(
                action, self._create_service_with_auth, template, name, labels, mode, endpoint, auth
            )
        return str(created["ID"])

    def _create_service_with_auth(
        self,
        template: docker.types.TaskTemplate,
        name: str,
        labels: Mapping[str, str],
        mode: docker.types.ServiceMode,
        endpoint: docker.types.EndpointSpec,
        auth: RegistryAuth,
    ) -> dict[str, Any]:
        """docker-py's create_service takes its X-Registry-Auth from the client configuration
        only; this is the same request with the login given."""
        import docker.auth

        body = {
            "Name": name,
            "Labels": dict(labels),
            "TaskTemplate": template,
            "Mode": mode,
            "EndpointSpec": endpoint,
        }
        headers = {"X-Registry-Auth": docker.auth.encode_header(registry_auth(auth))}
        response = self.api._post_json(
            self.api._url("/services/create"), data=body, headers=headers
        )
        return dict(self.api._result(response, True))

    def create_node_service(
        self,
        *,
        name: str,
        image: str,
        command: Sequence[str],
        labels: Mapping[str, str],
        capabilities: Sequence[str],
        health_check: Sequence[str],
    ) -> str:
        """A service with one task on every node, on the node's own network (``docker service
        create --mode global --network host --cap-add ...``), restarted when it stops. A task
        counts as running only once ``health_check`` succeeds in it (every 2 s)."""
        import docker.types

        spec = docker.types.ContainerSpec(
            image,
            command=list(command),
            labels=dict(labels),
            cap_add=list(capabilities),
            healthcheck=docker.types.Healthcheck(
                test=["CMD", *health_check],
                interval=int(2e9),
                timeout=int(3e9),
                retries=3,
            ),
        )
        template = docker.types.TaskTemplate(
            spec,
            restart_policy=docker.types.RestartPolicy(condition="any", delay=int(1e9)),
            log_driver=docker.types.DriverConfig(LOG_DRIVER, dict(LOG_OPTIONS)),
            networks=[docker.types.NetworkAttachmentConfig("host")],
        )
        created = self.call(
            f"create the service {name}",
            self.api.create_service,
            template,
            name=name,
            labels=dict(labels),
            mode=docker.types.ServiceMode("global"),
        )
        return str(created["ID"])

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        created = self.call(
            f"create the secret {name}", self.api.create_secret, name, data, labels=dict(labels)
        )
        return str(created["ID"])

    def remove_secrets(self, labels: Mapping[str, str]) -> None:
        found = self.call("list secrets", self.api.secrets, filters=label_filter(labels))
        for secret in found:
            self.quietly("remove a secret", self.api.remove_secret, secret["ID"])

    def services(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        return list(self.call("list services", self.api.services, filters=label_filter(labels)))

    def tasks(self, service_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The tasks of these services, also of services already removed whose tasks are still
        being taken down."""
        if not service_ids:
            return []
        try:
            found = self.call("list tasks", self.api.tasks, filters={"service": list(service_ids)})
        except Missing:
            wanted = set(service_ids)
            found = [t for t in self.call("list tasks", self.api.tasks) if t["ServiceID"] in wanted]
        return list(found)

    def stop_service_task(self, service_id: str, token: str) -> None:
        """Stop a single-replica service's task and keep it: SIGTERM now, SIGKILL after the
        service's stop grace period, enforced by the swarm on the node. A placement constraint
        no node meets makes the swarm replace the task: the old one is shut down but stays,
        with its exit code and its container's log, and the new one never runs. (Scaling to
        zero would delete the task and its log with it.)"""
        action = "stop a service"
        try:
            current = self.call(action, self.api.inspect_service, service_id)
        except Missing:
            return
        placement = dict(current["Spec"]["TaskTemplate"].get("Placement") or {})
        constraint = f"node.labels.trainforge.stopped=={token}"
        constraints = list(placement.get("Constraints") or [])
        if constraint in constraints:
            return
        placement["Constraints"] = [*constraints, constraint]
        self.quietly(
            action,
            self.api.update_service,
            service_id,
            current["Version"]["Index"],
            task_template={"Placement": placement},
            fetch_current_spec=True,
        )

    def remove_service(self, service_id: str) -> None:
        self.quietly("remove a service", self.api.remove_service, service_id)

    # -- containers ----------------------------------------------------------------------------

    def run_container(
        self,
        *,
        name: str,
        image: str,
        entrypoint: Sequence[str] | None,
        command: Sequence[str] | None,
        env: Mapping[str, str],
        hostname: str,
        labels: Mapping[str, str],
        mounts: Sequence[Mount],
        network: str,
        aliases: Sequence[str] = (),
        cpus: float | None = None,
        memory_bytes: int | None = None,
        shm_bytes: int | None = None,
        gpu_ids: Sequence[str] = (),
    ) -> str:
        """Create and start one container; nothing is left behind when it cannot start. The
        request is the one docker-py's ``create_container`` makes of these arguments."""
        host_config: dict[str, Any] = {
            "NetworkMode": network,
            "LogConfig": {"Type": LOG_DRIVER, "Config": dict(LOG_OPTIONS)},
            "Mounts": [mount_config(m) for m in mounts],
        }
        if memory_bytes is not None:
            host_config["Memory"] = int(memory_bytes)
        if shm_bytes:
            host_config["ShmSize"] = int(shm_bytes)
        if cpus:
            # Docker refuses a CPU limit above the engine's CPU count.
            host_config["NanoCpus"] = int(min(cpus, self.cpus()) * 1e9)
        if gpu_ids:
            host_config["DeviceRequests"] = [gpu_request(gpu_ids)]
        config = {
            "Hostname": hostname,
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "AttachStdin": False,
            "AttachStdout": True,
            "AttachStderr": True,
            "Env": [f"{key}={value}" for key, value in env.items()],
            "Cmd": list(command) if command is not None else None,
            "Image": image,
            "NetworkDisabled": False,
            "Entrypoint": list(entrypoint) if entrypoint is not None else None,
            "HostConfig": host_config,
            "NetworkingConfig": (
                {"EndpointsConfig": {network: {"Aliases": list(aliases)}}} if aliases else None
            ),
            "Labels": dict(labels),
        }
        action = f"create the container for {hostname}"
        container = self.request(
            action,
            "POST",
            "/containers/create",
            {"name": name},
            {key: value for key, value in config.items() if value is not None},
        )
        container_id = str(container["Id"])
        try:
            self._transport.call("POST", f"/containers/{container_id}/start")
        except _ApiError as exc:
            self.remove_container(container_id)
            raise ContainerStartError(
                f"The training container for {hostname} could not start: {exc.explanation or exc}"
            ) from exc
        except _Unreachable as exc:
            with contextlib.suppress(EngineError):
                self.remove_container(container_id)
            raise self.fail(f"start the container for {hostname}", exc) from exc
        return container_id

    def containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        params = {"all": "1", "filters": json.dumps(label_filter(labels))}
        return list(self.request("list containers", "GET", "/containers/json", params))

    def inspect(self, container_id: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.request("inspect a container", "GET", f"/containers/{container_id}/json")
            )
        except Missing:
            return None

    def wait(self, container_id: str) -> int | None:
        """Block until the container exits; its exit code, or None when it is gone."""
        try:
            result = self.request(
                "wait for a container", "POST", f"/containers/{container_id}/wait", timeout=None
            )
        except Missing:
            return None
        return int(result.get("StatusCode", 0))

    def signal(self, container_id: str, signal: str) -> None:
        self.request_quietly(
            f"send {signal} to a container",
            "POST",
            f"/containers/{container_id}/kill",
            {"signal": signal},
        )

    def stats(self, container_id: str) -> dict[str, Any] | None:
        """One sample of the container's resource use (no waiting for a second one)."""
        try:
            found = self.request(
                "read a container's use",
                "GET",
                f"/containers/{container_id}/stats",
                {"stream": "0", "one-shot": "1"},
            )
        except Missing:
            return None
        return dict(found)

    def remove_container(self, container_id: str) -> None:
        self.request_quietly(
            "remove a container", "DELETE", f"/containers/{container_id}", {"force": "1"}
        )

    def container_logs(self, container_id: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        """The container's lines with Docker's timestamps, after ``since_ns`` (roughly: the
        engine takes a float, so callers drop lines at or before their cursor themselves)."""
        return self._log_lines(f"/containers/{container_id}/logs", since_ns, follow)

    def service_logs(self, service_id: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        return self._log_lines(f"/services/{service_id}/logs", since_ns, follow)

    def task_logs(self, task_id: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        return self._log_lines(f"/tasks/{task_id}/logs", since_ns, follow)

    def _log_lines(self, path: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        """Read a log endpoint in large chunks and split Docker's multiplexed frames here:
        docker-py reads each frame with two small reads, which costs more than the rest of a
        line's way to the store together."""
        params = {"stdout": "1", "stderr": "1", "timestamps": "1", "follow": str(int(follow))}
        if since_ns > 0:
            params["since"] = f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"
        action = "read a container's logs"
        try:
            chunks = self._transport.stream(path, params)
        except _ApiError as exc:
            raise EngineError(f"Docker could not {action}: {exc.explanation}") from exc
        except _Unreachable as exc:
            raise self.fail(action, exc) from exc
        if chunks is None:
            return
        try:
            yield from _lines(_frames(chunks))
        except _Unreachable as exc:
            raise self.fail(action, exc) from exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()


_READ_CHUNK = 256 * 1024


def _frames(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Docker's multiplexed stream: an 8-byte header (stream, 0, 0, 0, big-endian size), then
    the payload."""
    buffer = b""
    for chunk in chunks:
        buffer = buffer + chunk if buffer else chunk
        position = 0
        end = len(buffer)
        while end - position >= 8:
            size = int.from_bytes(buffer[position + 4 : position + 8], "big")
            start = position + 8
            if end - start < size:
                break
            yield buffer[start : start + size]
            position = start + size
        buffer = buffer[position:]


class _Clock:
    """Docker's timestamps, parsed fast: lines of the same second share their date part."""

    def __init__(self) -> None:
        self._second: bytes = b""
        self._epoch = 0

    def ns(self, stamp: bytes) -> int | None:
        # 2026-11-26T12:30:54.123456789Z: the part up to the dot names the second.
        if len(stamp) < 20 or stamp[4:5] != b"-" or stamp[10:11] != b"T":
            return None
        dot = stamp.find(b".", 19)
        head = stamp[:dot] if dot > 0 else stamp[:19]
        if head != self._second or not stamp.endswith(b"Z"):
            try:
                if not stamp.endswith(b"Z"):
                    return parse_timestamp_ns(stamp.decode("ascii"))
                self._epoch = parse_timestamp_ns(head.decode("ascii") + "Z")
            except ValueError:
                return None
            self._second = head
        if dot < 0:
            return self._epoch
        fraction = stamp[dot + 1 : -1]
        return self._epoch + int(fraction.ljust(9, b"0")[:9] or b"0")


def _lines(frames: Iterator[bytes]) -> Iterator[LogLine]:
    """A long line arrives as several messages: they are joined, and only the first one's time
    counts."""
    clock = _Clock()
    pending = b""
    pending_ts = 0
    for frame in frames:
        head, sep, payload = frame.partition(b" ")
        ts = clock.ns(head) if sep else None
        if ts is None:
            payload = frame
        if pending:
            payload = pending + payload
            ts = pending_ts
        elif ts is None:
            ts = pending_ts
        if payload.endswith(b"\n") and payload.count(b"\n") == 1:
            yield LogLine(ts, payload[:-1].decode("utf-8", "replace"))
            pending = b""
            continue
        lines = payload.split(b"\n")
        pending = lines.pop()
        pending_ts = ts
        for line in lines:
            yield LogLine(ts, line.decode("utf-8", "replace"))
    if pending:
        yield LogLine(pending_ts, pending.decode("utf-8", "replace"))


def registry_auth(auth: RegistryAuth | None) -> dict[str, str] | None:
    """A login as the Engine API's X-Registry-Auth carries it; None lets docker-py use the
    Docker client configuration of this user (~/.docker/config.json, credential helpers)."""
    if auth is None:
        return None
    return {"username": auth.username, "password": auth.password, "serveraddress": auth.server}


def mount_config(mount: Mount) -> dict[str, Any]:
    """A mount as the Engine API takes it (what ``docker.types.Mount`` makes of it)."""
    return {
        "Target": str(mount.target),
        "Source": mount.source,
        "Type": "volume" if mount.kind is MountKind.VOLUME else "bind",
        "ReadOnly": mount.read_only,
    }


def gpu_request(gpu_ids: Sequence[str]) -> dict[str, Any]:
    """These GPUs as a device request (what ``docker.types.DeviceRequest`` makes of them)."""
    return {
        "Driver": "",
        "Count": 0,
        "DeviceIDs": list(gpu_ids),
        "Capabilities": [["gpu"]],
        "Options": {},
    }


def docker_mount(mount: Mount) -> docker.types.Mount:
    import docker.types

    return docker.types.Mount(
        target=str(mount.target),
        source=mount.source,
        type="volume" if mount.kind is MountKind.VOLUME else "bind",
        read_only=mount.read_only,
    )

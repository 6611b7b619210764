"""Images on a Docker engine: inspect one (pulling it, with its registry's login, when it is not
there), look into its filesystem without running it, build, run a one-off command in it, and
remove it. Everything but the inspection goes through docker-py.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from trainforge.domain.images import DOCKER_HUB, ImageSource, registry_of, split_tag
from trainforge.engines.base import ImageContents, ImageInfo, SourceOf
from trainforge.engines.dockerapi.core import EngineCalls
from trainforge.engines.dockerapi.transport import Missing, connection_errors
from trainforge.engines.dockerapi.wire import registry_auth
from trainforge.errors import EngineError, ImageNotFound

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageCalls(EngineCalls):
    """The images of this engine."""

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
        except connection_errors() as exc:
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
        except connection_errors() as exc:
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
        except connection_errors() as exc:
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

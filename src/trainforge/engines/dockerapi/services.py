"""A Docker swarm through its manager: the nodes, single-replica services that stand for a job's
hosts (pinned to a node, with the job's login for the image), global services on every node,
secrets, the services' tasks and logs, and a stop that keeps a task's exit code and log. All of
it goes through docker-py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from trainforge.domain.images import RegistryAuth
from trainforge.engines.base import LogLine, Mount
from trainforge.engines.dockerapi.core import EngineCalls
from trainforge.engines.dockerapi.transport import Missing
from trainforge.engines.dockerapi.wire import (
    LOG_DRIVER,
    LOG_OPTIONS,
    docker_mount,
    label_filter,
    registry_auth,
)

if TYPE_CHECKING:
    import docker.types


class ServiceCalls(EngineCalls):
    """The swarm this engine manages: nodes, services, tasks, secrets."""

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

    def service_logs(self, service_id: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        return self.read_log(f"/services/{service_id}/logs", since_ns, follow)

    def task_logs(self, task_id: str, since_ns: int, follow: bool) -> Iterator[LogLine]:
        return self.read_log(f"/tasks/{task_id}/logs", since_ns, follow)

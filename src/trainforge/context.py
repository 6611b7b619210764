"""The composition root: builds the store, the engine, storage, the runtime, the job lifecycle and
the services from one Settings object. The engine and S3 are built on first use, so commands that
only read the store (list, describe, logs) never need Docker.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trainforge.aws.skeleton import Dispatcher, Handler
from trainforge.domain.allocation import Node
from trainforge.domain.hosts import hosts_of
from trainforge.domain.request import CreateTrainingJobRequest
from trainforge.engines.base import Engine
from trainforge.errors import CredentialsError, EngineError
from trainforge.runtime.aws_access import AwsAccess
from trainforge.runtime.credentials_endpoint import CredentialsEndpoint
from trainforge.runtime.dataplane import DataPlane, LocalDataPlane
from trainforge.runtime.execute import JobRunner, RuntimeConfig
from trainforge.runtime.jobspec import JobSpec
from trainforge.runtime.registry import RegistryAccess
from trainforge.runtime.role_credentials import CredentialsPolicy
from trainforge.runtime.staging import Stager
from trainforge.scheduler.capacity import refuse_if_never_fits, refuse_if_too_many_hosts
from trainforge.scheduler.lifecycle import Lifecycle, Placement
from trainforge.service.identity import IdentityService
from trainforge.service.semantics import local_path_problem
from trainforge.service.training_jobs import TrainingJobService
from trainforge.settings import Settings, parse_registry_auth
from trainforge.storage.base import Storage
from trainforge.storage.local import LocalStore
from trainforge.store.db import Database
from trainforge.store.images import ImageProbeStore
from trainforge.store.jobs import JobStore
from trainforge.store.logs import LogStore

if TYPE_CHECKING:
    from trainforge.service.logs import LogsService
    from trainforge.service.metrics import MetricsService

log = logging.getLogger("trainforge.server")
_NODES_TTL_SECONDS = 2.0


def _s3_endpoint() -> str | None:
    """The S3 endpoint this process uses, when it is not AWS's."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _s3_access_env() -> dict[str, str]:
    """This process's resolved AWS credentials and S3 endpoint, as environment variables."""
    from trainforge.storage.s3 import caller_credentials_env

    env = caller_credentials_env()
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


class Context:
    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.db = Database(settings.db_path)
        self.jobs = JobStore(self.db)
        self.logs = LogStore(self.db)
        self._engine = engine
        self._cluster: tuple[float, list[Node]] | None = None

    @property
    def instance_label(self) -> str:
        """Tells this home's containers apart from another trainforge home's on one engine."""
        return hashlib.sha256(str(self.settings.home.resolve()).encode()).hexdigest()[:12]

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self.settings.engine == "swarm":
                from trainforge.engines.swarm import SwarmEngine

                dns = tuple(d.strip() for d in self.settings.swarm_dns.split(",") if d.strip())
                self._engine = SwarmEngine(
                    self.instance_label,
                    place_seconds=self.settings.swarm_place_seconds,
                    dns=dns,
                )
            else:
                from trainforge.engines.docker import DockerEngine

                self._engine = DockerEngine(self.instance_label)
        return self._engine

    @property
    def spans_machines(self) -> bool:
        """Without building the engine: a cluster engine's hosts run on other machines."""
        return self.settings.engine == "swarm"

    @functools.cached_property
    def storage(self) -> Storage:
        def s3() -> Any:
            from trainforge.storage.s3 import S3Store

            return S3Store(self.settings.region)

        return Storage(s3, LocalStore())

    @functools.cached_property
    def runner(self) -> JobRunner:
        config = RuntimeConfig(
            stop_grace_seconds=self.settings.stop_grace_seconds,
            keep_containers=self.settings.keep_containers,
            keep_workspaces=self.settings.keep_workspaces,
            log_flush_seconds=self.settings.log_flush_seconds,
            engine_outage_seconds=self.settings.engine_outage_seconds,
            instance_metrics_seconds=self.settings.instance_metrics_seconds,
            aws=self.aws_access,
        )
        data: DataPlane
        if self.engine.spans_machines:
            from trainforge.runtime.agentplane import AgentDataPlane

            data = AgentDataPlane(
                self.engine,
                self.settings.agent_image,
                self.settings.swarm_node_dir,
                self.instance_label,
                self.agent_env,
                self.settings.shared,
                self.settings.instance_metrics_seconds,
            )
        else:
            data = LocalDataPlane(self.settings.jobs_dir, self.storage)
        registry = RegistryAccess(
            parse_registry_auth(self.settings.registry_auth),
            self.settings.registry_auth_file,
            self.settings.ecr_registry_endpoint,
        )
        return JobRunner(config, self.engine, data, ImageProbeStore(self.db), registry)

    def agent_env(self) -> Mapping[str, str]:
        """What agents need to reach S3 as this server does: its credentials, region and
        endpoint. Never given to a training container (unless asked, see aws_access)."""
        env = _s3_access_env()
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.settings.region
        return env

    @functools.cached_property
    def credentials_endpoint(self) -> CredentialsEndpoint | None:
        """This process's credentials endpoint (started on a job's first use), or None when
        TRAINFORGE_CREDENTIALS_ADDRESS is empty or the old way is asked for. On a cluster it
        listens where the nodes reach this machine, and each node relays its containers'
        requests to it from the credentials address."""
        settings = self.settings
        if not settings.credentials_address or settings.pass_aws_credentials:
            return None
        if self.spans_machines:
            return CredentialsEndpoint(
                settings.swarm_server_address or self._cluster_address(),
                settings.credentials_port,
                settings.home / "credentials",
                relay=self._relay_credentials,
            )

        def hold(address: str) -> None:
            try:
                self.engine.hold_address(address, settings.agent_image)
            except (EngineError, NotImplementedError) as exc:
                raise CredentialsError(
                    f"this machine does not hold {address}, trainforge may not add it (it takes "
                    f"CAP_NET_ADMIN), and the Docker engine could not either: {exc}"
                ) from None

        return CredentialsEndpoint(
            settings.credentials_address,
            settings.credentials_port,
            settings.home / "credentials",
            hold,
        )

    def prepare_credentials(self) -> None:
        """On a cluster: start the endpoint and the nodes' relays now, beside the server's own
        start, so that the first job does not wait for them (each job still checks them)."""
        endpoint = self.credentials_endpoint
        if endpoint is None or not self.spans_machines:
            return

        def prepare() -> None:
            try:
                endpoint.prepare()
            except CredentialsError as exc:
                # Each job tries again, and says why in its log when it cannot.
                log.warning("The credentials endpoint is not ready yet: %s", exc)

        threading.Thread(target=prepare, name="credentials-relay", daemon=True).start()

    def _cluster_address(self) -> str:
        from trainforge.engines.swarm import SwarmEngine

        engine = self.engine
        try:
            found = engine.local_address() if isinstance(engine, SwarmEngine) else ""
        except (OSError, EngineError):
            found = ""
        # Unknown (""): the endpoint does not start and each job's log says why.
        return found

    def _relay_credentials(self, upstream: str) -> str:
        settings = self.settings
        address, port = settings.credentials_address, settings.swarm_credentials_port
        try:
            port = self.engine.relay_credentials(address, port, upstream, settings.agent_image)
        except (EngineError, NotImplementedError) as exc:
            raise CredentialsError(f"the nodes' credentials relay could not start: {exc}") from None
        host = f"[{address}]" if ":" in address else address
        return f"http://{host}:{port}/v1/credentials"

    @functools.cached_property
    def aws_access(self) -> AwsAccess:
        settings = self.settings
        policy = CredentialsPolicy(
            settings.region,
            settings.assume_role,
            settings.credentials_duration_seconds,
            settings.credentials_refresh_seconds,
            settings.role_mapping,
        )
        return AwsAccess(
            policy,
            self.credentials_endpoint,
            _s3_endpoint,
            _s3_access_env if settings.pass_aws_credentials else None,
        )

    def check_inputs(self, name: str, request: CreateTrainingJobRequest) -> str | None:
        if self.spans_machines:
            problem = local_path_problem(request, self.settings.shared)
            if problem:
                return problem
        spec = JobSpec.from_request(name, "", self.settings.region, request)
        return Stager(self.storage).missing_input(spec)

    @functools.cached_property
    def _machine(self) -> list[Node]:
        found = self.engine.nodes()
        if not found:
            return found
        # One machine: TRAINFORGE_CAPACITY_* say what of it trainforge may use.
        machine = found[0]
        settings = self.settings
        gpu_ids = machine.gpu_ids
        if settings.capacity_gpus is not None:
            gpu_ids = tuple(str(i) for i in range(settings.capacity_gpus))
        return [
            Node(
                machine.name,
                settings.capacity_cpus if settings.capacity_cpus is not None else machine.cpus,
                settings.capacity_memory_mib
                if settings.capacity_memory_mib is not None
                else machine.memory_mib,
                gpu_ids,
            )
        ]

    def nodes(self) -> list[Node]:
        """Where jobs can run: this machine (as TRAINFORGE_CAPACITY_* say), or the cluster's
        nodes as they are now (read at most every few seconds)."""
        if not self.engine.spans_machines:
            return self._machine
        now = time.monotonic()
        if self._cluster is None or now - self._cluster[0] > _NODES_TTL_SECONDS:
            self._cluster = (now, self.engine.nodes())
        return self._cluster[1]

    @property
    def placement(self) -> Placement:
        return Placement(self.nodes, spread=self.engine.spans_machines)

    def lifecycle(self, owner: str) -> Lifecycle:
        settings = self.settings
        return Lifecycle(
            self.jobs,
            self.logs,
            self.runner,
            self.engine,
            self.placement,
            owner,
            settings.lease_seconds,
            settings.heartbeat_seconds,
            settings.region,
            settings.spot_interruptions_per_hour,
        )

    def admission(self, request: CreateTrainingJobRequest) -> None:
        """Refuse at create a job no allocation can ever give: on one machine, more hosts than
        it can share among; with strict admission, any job the nodes can never hold uncapped."""
        hosts = hosts_of(request)
        spread = self.spans_machines
        if not spread:
            refuse_if_too_many_hosts(hosts, self.nodes()[0])
        if self.settings.strict_admission:
            in_use = [h.instance_type for a in self.jobs.allocations() for h in a.hosts]
            refuse_if_never_fits(hosts, self.nodes(), in_use, spread=spread)

    @functools.cached_property
    def service(self) -> TrainingJobService:
        return TrainingJobService(
            self.jobs,
            self.settings.region,
            self.settings.account_id,
            input_checker=self.check_inputs,
            admission=self.admission,
        )

    @functools.cached_property
    def logs_service(self) -> LogsService:
        # Built on first use, as the metrics service: `trainforge run` needs neither.
        from trainforge.service.logs import LogsService

        return LogsService(self.logs, self.settings.region, self.settings.account_id)

    @functools.cached_property
    def metrics_service(self) -> MetricsService:
        from trainforge.service.metrics import MetricsService
        from trainforge.store.metrics import MetricStore

        return MetricsService(MetricStore(self.db))

    @functools.cached_property
    def identity_service(self) -> IdentityService:
        return IdentityService(self.settings.account_id, dt.datetime.now(dt.UTC))

    @functools.cached_property
    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.handlers())

    def handlers(self) -> dict[tuple[str, str], Handler]:
        svc = self.service
        handlers: dict[tuple[str, str], Handler] = {
            ("sagemaker", "CreateTrainingJob"): svc.create_training_job,
            ("sagemaker", "DescribeTrainingJob"): svc.describe_training_job,
            ("sagemaker", "ListTrainingJobs"): svc.list_training_jobs,
            ("sagemaker", "StopTrainingJob"): svc.stop_training_job,
            ("sagemaker", "UpdateTrainingJob"): svc.update_training_job,
            ("sagemaker", "DeleteTrainingJob"): svc.delete_training_job,
            ("sagemaker", "AddTags"): svc.add_tags,
            ("sagemaker", "ListTags"): svc.list_tags,
            ("sagemaker", "DeleteTags"): svc.delete_tags,
            # The logs and metrics services are built when first called, not with the
            # dispatcher: `trainforge run` only validates and creates.
            **{
                ("logs", op): functools.partial(self._logs_call, op)
                for op in ("DescribeLogStreams", "GetLogEvents", "FilterLogEvents")
            },
            **{
                ("cloudwatch", op): functools.partial(self._metrics_call, op)
                for op in ("GetMetricStatistics", "GetMetricData", "ListMetrics")
            },
            ("iam", "GetRole"): self.identity_service.get_role,
            ("iam", "SimulatePrincipalPolicy"): self.identity_service.simulate_principal_policy,
            ("sts", "GetCallerIdentity"): self.identity_service.get_caller_identity,
        }
        return handlers

    def _logs_call(self, operation: str, params: dict[str, Any]) -> Any:
        return getattr(self.logs_service, _snake(operation))(params)

    def _metrics_call(self, operation: str, params: dict[str, Any]) -> Any:
        return getattr(self.metrics_service, _snake(operation))(params)


def _snake(operation: str) -> str:
    """``GetLogEvents`` → ``get_log_events``: the services name their methods after the API."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")

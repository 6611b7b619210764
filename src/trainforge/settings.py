"""The one Settings object: read once from the environment (TRAINFORGE_*) and an optional
config file, then passed down. Nothing else in trainforge reads TRAINFORGE_* variables.

The file is ``$TRAINFORGE_HOME/config.toml`` (or ``TRAINFORGE_CONFIG``), with the same names as
the environment variables, lower case and without the prefix. The environment wins over the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_ACCOUNT_ID = "000000000000"
DEFAULT_REGION = "us-east-1"
# SageMaker waits 120 s between SIGTERM and SIGKILL (docker stop -t 120).
DEFAULT_STOP_GRACE_SECONDS = 120.0
DEFAULT_AGENT_IMAGE = "trainforge/agent:latest"
ENGINES = ("docker", "swarm")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class RoleSource:
    """Where a role's credentials come from when AssumeRole is not used: a profile's, or keys."""

    profile: str = ""
    keys: AccessKey | None = field(default=None, repr=False)


def parse_role_credentials(raw: str) -> dict[str, RoleSource]:
    """`ROLE_ARN=profile:NAME` or `ROLE_ARN=keys:ID:SECRET`, separated by `;`. A role name may
    hold `=`, so the entry splits at its last `=profile:` or `=keys:`."""
    mapping: dict[str, RoleSource] = {}
    for entry in (e.strip() for e in raw.split(";")):
        if not entry:
            continue
        role, marker, value = entry.rpartition("=profile:")
        if marker and role and value:
            mapping[role.strip()] = RoleSource(profile=value.strip())
            continue
        role, marker, value = entry.rpartition("=keys:")
        key_id, _, secret = value.partition(":")
        if not (marker and role and key_id and secret):
            raise ValueError(
                "TRAINFORGE_ROLE_CREDENTIALS entries are ROLE_ARN=profile:NAME or "
                f"ROLE_ARN=keys:ID:SECRET, separated by ';', not {entry.split('=')[0]!r}..."
            )
        mapping[role.strip()] = RoleSource(keys=AccessKey(key_id.strip(), secret.strip()))
    return mapping


@dataclass(frozen=True)
class Settings:
    home: Path
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    stop_grace_seconds: float = DEFAULT_STOP_GRACE_SECONDS
    # The old, less safe way (SDK local mode's): this process's AWS keys in every container's
    # environment, instead of the credentials endpoint.
    pass_aws_credentials: bool = False
    # The per-job credentials endpoint containers reach (docs/credentials.md): its address,
    # held by this machine ("" turns it off), and its port (0: any free port).
    credentials_address: str = "169.254.170.2"
    credentials_port: int = 0
    # AssumeRole of the job's RoleArn with this process's credentials: for how long, and how
    # long before they expire the endpoint fetches fresh ones.
    assume_role: bool = True
    credentials_duration_seconds: int = 3600
    credentials_refresh_seconds: float = 300.0
    # `ROLE_ARN=profile:NAME` or `ROLE_ARN=keys:ID:SECRET`, separated by `;`: the credentials
    # a role's jobs get when AssumeRole is off or refused.
    role_credentials: str = ""
    keep_containers: bool = False
    keep_workspaces: bool = False
    # Where `trainforge serve` listens, and where the CLI finds a running server.
    host: str = "127.0.0.1"
    port: int = 8443
    server_url: str | None = None
    strict_admission: bool = False
    access_keys: tuple[AccessKey, ...] = ()
    max_concurrent_jobs: int = 0
    capacity_cpus: float | None = None
    capacity_memory_mib: int | None = None
    capacity_gpus: int | None = None
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    log_flush_seconds: float = 0.2
    # How long a job waits for an engine that stopped answering (a daemon restarting).
    engine_outage_seconds: float = 60.0
    # How often each running host's instance metrics (CPU, memory, disk, GPU) are sampled; 0: never.
    instance_metrics_seconds: float = 10.0
    # A client must send its request headers, and then its body, within these; at most this
    # many connections are open at once.
    http_header_timeout_seconds: float = 10.0
    http_body_timeout_seconds: float = 60.0
    http_max_connections: int = 512
    # Where jobs run: "docker" (this machine's engine) or "swarm" (a Swarm manager at DOCKER_HOST).
    engine: str = "docker"
    # The agent image the nodes of a cluster engine run (`trainforge agent-image` builds it).
    agent_image: str = DEFAULT_AGENT_IMAGE
    # On each swarm node: the existing directory under which jobs' trees live.
    swarm_node_dir: str = "/var/tmp"
    # How long a job's hosts may take to all start on the swarm before the job fails.
    swarm_place_seconds: float = 60.0
    # Name servers for the swarm's containers ("" keeps the node's).
    swarm_dns: str = ""
    # The port each swarm node's credentials relay listens at, on credentials_address (0: the
    # first from 51679 that no other server's relay on the swarm uses, kept across restarts).
    swarm_credentials_port: int = 0
    # Where the swarm's nodes reach this machine (its credentials endpoint listens there, at
    # credentials_port); "" finds it from the route to the manager.
    swarm_server_address: str = ""
    # Local paths every node sees too (comma separated): file:// channels and outputs under them
    # are allowed on a cluster engine.
    shared_paths: str = ""
    # Soak tests of resume-from-checkpoint code: managed spot jobs are interrupted at random, this
    # many times an hour on average (0: only `trainforge interrupt` interrupts them).
    spot_interruptions_per_hour: float = 0.0
    # Logins for private registries: `registry=user:password[,...]` (never shown in a repr), and
    # a file in Docker's config.json form read at each pull. Registries named in neither use
    # the Docker client configuration of the user running trainforge (~/.docker/config.json).
    registry_auth: str = field(default="", repr=False)
    registry_auth_file: str = ""
    # Where ECR images are pulled from instead of the ECR host their URI names (an ECR-compatible
    # registry or a mirror of the same repositories), still with the ECR login's token.
    ecr_registry_endpoint: str = ""

    @property
    def db_path(self) -> Path:
        return self.home / "trainforge.db"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def role_mapping(self) -> dict[str, RoleSource]:
        return parse_role_credentials(self.role_credentials)

    @property
    def shared(self) -> tuple[str, ...]:
        return tuple(p.strip().rstrip("/") for p in self.shared_paths.split(",") if p.strip())

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_FIELDS: dict[str, type] = {
    "region": str,
    "account_id": str,
    "stop_grace_seconds": float,
    "pass_aws_credentials": bool,
    "credentials_address": str,
    "credentials_port": int,
    "assume_role": bool,
    "credentials_duration_seconds": int,
    "credentials_refresh_seconds": float,
    "role_credentials": str,
    "keep_containers": bool,
    "keep_workspaces": bool,
    "host": str,
    "port": int,
    "server_url": str,
    "strict_admission": bool,
    "max_concurrent_jobs": int,
    "capacity_cpus": float,
    "capacity_memory_mib": int,
    "capacity_gpus": int,
    "lease_seconds": float,
    "heartbeat_seconds": float,
    "log_flush_seconds": float,
    "engine_outage_seconds": float,
    "instance_metrics_seconds": float,
    "http_header_timeout_seconds": float,
    "http_body_timeout_seconds": float,
    "http_max_connections": int,
    "engine": str,
    "agent_image": str,
    "swarm_node_dir": str,
    "swarm_place_seconds": float,
    "swarm_dns": str,
    "swarm_credentials_port": int,
    "swarm_server_address": str,
    "shared_paths": str,
    "spot_interruptions_per_hour": float,
    "registry_auth": str,
    "registry_auth_file": str,
    "ecr_registry_endpoint": str,
}


def _convert(name: str, raw: Any) -> Any:
    kind = _FIELDS[name]
    if kind is bool:
        return _as_bool(raw)
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    return str(raw)


_NOT_NEGATIVE = (
    "stop_grace_seconds",
    "lease_seconds",
    "heartbeat_seconds",
    "log_flush_seconds",
    "engine_outage_seconds",
    "instance_metrics_seconds",
    "http_header_timeout_seconds",
    "http_body_timeout_seconds",
    "swarm_place_seconds",
    "spot_interruptions_per_hour",
    "credentials_port",
    "swarm_credentials_port",
    "credentials_refresh_seconds",
)


def _converted(name: str, raw: Any, where: str) -> Any:
    """A setting's value, or a ValueError that names where it came from."""
    try:
        value = _convert(name, raw)
    except ValueError:
        kind = _FIELDS[name].__name__
        raise ValueError(
            f"{where} must be {'an' if kind == 'int' else 'a'} {kind}, not {raw!r}"
        ) from None
    if name in _NOT_NEGATIVE and value < 0:
        raise ValueError(f"{where} must not be negative, not {raw!r}")
    return value


def _parse_access_keys(raw: str) -> tuple[AccessKey, ...]:
    """`ID:SECRET[,ID:SECRET...]`."""
    keys = []
    for pair in raw.split(","):
        item = pair.strip()
        if not item:
            continue
        key_id, _, secret = item.partition(":")
        if not key_id or not secret:
            raise ValueError("TRAINFORGE_ACCESS_KEYS must be ID:SECRET pairs separated by commas")
        keys.append(AccessKey(key_id, secret))
    return tuple(keys)


def parse_registry_auth(raw: str) -> dict[str, tuple[str, str]]:
    """`registry=user:password[,registry=user:password...]` as {registry: (user, password)}."""
    logins: dict[str, tuple[str, str]] = {}
    for item in raw.split(","):
        entry = item.strip()
        if not entry:
            continue
        registry, _, login = entry.partition("=")
        user, _, password = login.partition(":")
        if not registry.strip() or not user or not password:
            # The value is a secret: the message names the registry, never the login.
            raise ValueError(
                "TRAINFORGE_REGISTRY_AUTH must be registry=user:password pairs separated by "
                f"commas (the entry for {registry.strip()!r} is not)"
            )
        logins[registry.strip().lower()] = (user, password)
    return logins


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = Path(env.get("TRAINFORGE_HOME") or Path.home() / ".trainforge").expanduser()
    values: dict[str, Any] = {}
    config_path = Path(env.get("TRAINFORGE_CONFIG") or home / "config.toml")
    if config_path.is_file():
        import tomllib  # only with a config file: every command loads the settings

        with config_path.open("rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{config_path}: {exc}") from exc
        for name, raw in data.items():
            if name in _FIELDS:
                values[name] = _converted(name, raw, f"{name} in {config_path}")
            elif name == "access_keys":
                values["access_keys"] = _parse_access_keys(str(raw))
            else:
                raise ValueError(f"{config_path}: unknown setting {name!r}")
    # TRAINFORGE_REGION (below), then the config file, then the standard AWS variables.
    aws_region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if aws_region and "region" not in values:
        values["region"] = aws_region
    for name in _FIELDS:
        variable = "TRAINFORGE_" + name.upper()
        raw_env = env.get(variable)
        if raw_env is not None and raw_env != "":
            values[name] = _converted(name, raw_env, variable)
    if env.get("TRAINFORGE_ACCESS_KEYS"):
        values["access_keys"] = _parse_access_keys(env["TRAINFORGE_ACCESS_KEYS"])
    settings = Settings(home=home, **values)
    parse_registry_auth(settings.registry_auth)
    # A malformed mapping is refused at start, not at a job's.
    parse_role_credentials(settings.role_credentials)
    if settings.credentials_duration_seconds < 900:
        raise ValueError(
            "TRAINFORGE_CREDENTIALS_DURATION_SECONDS must be at least 900 (STS's minimum)"
        )
    if settings.engine not in ENGINES:
        raise ValueError(
            f"TRAINFORGE_ENGINE must be one of {', '.join(ENGINES)}, not {settings.engine!r}"
        )
    return settings

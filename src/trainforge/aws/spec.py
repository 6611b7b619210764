"""The SageMaker, CloudWatch Logs, CloudWatch, IAM and STS service models, loaded from botocore once
and cached.

botocore's SageMaker model is large (loading it costs about 0.2 s, paid by every ``trainforge``
command). Only the shapes reachable from the operations trainforge implements are kept: that
subset is written once per botocore version under ``$XDG_CACHE_HOME/trainforge`` and read back
in milliseconds. It is still botocore's model, cut mechanically, so the wire stays model-driven.

This module owns which operations trainforge implements. It must not import anything from the
service, store or runtime layers: the protocol layer only knows shapes. botocore's model classes
are imported when a model is first asked for: the pruned data alone (``model_data``, what
``shapes`` reads) needs none of botocore's HTTP stack.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore

if TYPE_CHECKING:
    from botocore.model import OperationModel, ServiceModel, Shape

SAGEMAKER = "sagemaker"
LOGS = "logs"
CLOUDWATCH = "cloudwatch"
IAM = "iam"
STS = "sts"

SAGEMAKER_OPERATIONS = frozenset(
    {
        "CreateTrainingJob",
        "DescribeTrainingJob",
        "ListTrainingJobs",
        "StopTrainingJob",
        "UpdateTrainingJob",
        "DeleteTrainingJob",
        "AddTags",
        "ListTags",
        "DeleteTags",
    }
)
LOGS_OPERATIONS = frozenset({"DescribeLogStreams", "GetLogEvents", "FilterLogEvents"})
CLOUDWATCH_OPERATIONS = frozenset({"GetMetricStatistics", "GetMetricData", "ListMetrics"})
# What the SageMaker SDKs ask before they create a job: the role (v3 validates it) and the
# caller's account (the default bucket's name).
IAM_OPERATIONS = frozenset({"GetRole", "SimulatePrincipalPolicy"})
STS_OPERATIONS = frozenset({"GetCallerIdentity"})
IMPLEMENTED = {
    SAGEMAKER: SAGEMAKER_OPERATIONS,
    LOGS: LOGS_OPERATIONS,
    CLOUDWATCH: CLOUDWATCH_OPERATIONS,
    IAM: IAM_OPERATIONS,
    STS: STS_OPERATIONS,
}
_CACHE_FORMAT = 1


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trainforge" / f"botocore-{botocore.__version__}-v{_CACHE_FORMAT}"


def _reachable(shapes: dict[str, Any], roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots if r]
    while todo:
        name = todo.pop()
        if name in seen or name not in shapes:
            continue
        seen.add(name)
        shape = shapes[name]
        for member in shape.get("members", {}).values():
            todo.append(member["shape"])
        for key in ("member", "key", "value"):
            if key in shape:
                todo.append(shape[key]["shape"])
    return seen


def prune(data: dict[str, Any], operations: Iterable[str]) -> dict[str, Any]:
    """The model restricted to ``operations`` and the shapes they reach."""
    kept = {name: data["operations"][name] for name in operations}
    roots = []
    for op in kept.values():
        roots += [op.get("input", {}).get("shape"), op.get("output", {}).get("shape")]
        roots += [error["shape"] for error in op.get("errors", [])]
    shapes = data["shapes"]
    return {
        "version": data.get("version", "2.0"),
        "metadata": data["metadata"],
        "operations": kept,
        "shapes": {name: shapes[name] for name in sorted(_reachable(shapes, roots))},
    }


@functools.cache
def model_data(service_name: str) -> dict[str, Any]:
    """The service's model, pruned to the operations trainforge implements, as JSON data."""
    path = _cache_dir() / f"{service_name}.json"
    try:
        with path.open(encoding="utf-8") as fh:
            cached: dict[str, Any] = json.load(fh)
        # A cache written for another set of operations (an older trainforge) is rebuilt.
        if set(cached.get("operations", ())) == set(IMPLEMENTED[service_name]):
            return cached
    except (OSError, ValueError):
        pass
    from botocore.loaders import create_loader  # heavy: only when the cache is cold

    full = create_loader().load_service_model(service_name, "service-2")
    data = prune(full, sorted(IMPLEMENTED[service_name]))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the full load next time
    return data


@functools.cache
def service_model(service_name: str) -> ServiceModel:
    from botocore.model import ServiceModel

    return ServiceModel(model_data(service_name), service_name=service_name)


@functools.cache
def operation(service_name: str, name: str) -> OperationModel:
    return service_model(service_name).operation_model(name)


def shape(service_name: str, name: str) -> Shape:
    return service_model(service_name).shape_for(name)


def target_prefix(service_name: str) -> str:
    return str(service_model(service_name).metadata["targetPrefix"])


def target_prefixes() -> dict[str, str]:
    """``X-Amz-Target`` prefix → service, for the served services that speak a JSON or CBOR
    protocol (IAM and STS speak only query and have none)."""
    return {
        str(service_model(name).metadata["targetPrefix"]): name
        for name in IMPLEMENTED
        if "targetPrefix" in service_model(name).metadata
    }


def query_only(service_name: str) -> bool:
    """Whether the service speaks nothing but the query protocol (IAM, STS): its errors carry
    the query codes (``ValidationError``), never the JSON ones."""
    return list(service_model(service_name).metadata.get("protocols", [])) == ["query"]


def json_version(service_name: str) -> str:
    """The AWS JSON protocol version the service speaks: "1.1" (SageMaker, Logs) or "1.0"."""
    return str(service_model(service_name).metadata.get("jsonVersion", "1.1"))


def query_compatible(service_name: str) -> bool:
    """Whether the service once spoke the query protocol, and so answers errors with the query
    error code in ``x-amzn-query-error`` (CloudWatch)."""
    return "awsQueryCompatible" in service_model(service_name).metadata


def error_shape_name(service_name: str, code: str) -> str | None:
    """The modelled error shape whose (query-protocol) code is ``code``: ``InvalidParameterValue``
    → ``InvalidParameterValueException``; None when the model has no such error."""
    for error in service_model(service_name).error_shapes:
        if (error.metadata.get("error", {}).get("code") or error.name) == code:
            return str(error.name)
    return None

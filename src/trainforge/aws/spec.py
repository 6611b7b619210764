"""The SageMaker and CloudWatch Logs service models, loaded from botocore once and cached.

This module owns which operations trainforge implements. It must not import anything from the
service, store or runtime layers: the protocol layer only knows shapes.
"""

from __future__ import annotations

import functools

from botocore.loaders import create_loader
from botocore.model import OperationModel, ServiceModel, Shape

SAGEMAKER = "sagemaker"
LOGS = "logs"

SAGEMAKER_OPERATIONS = frozenset(
    {
        "CreateTrainingJob",
        "DescribeTrainingJob",
        "ListTrainingJobs",
        "StopTrainingJob",
        "DeleteTrainingJob",
        "AddTags",
        "ListTags",
        "DeleteTags",
    }
)
LOGS_OPERATIONS = frozenset({"DescribeLogStreams", "GetLogEvents", "FilterLogEvents"})


@functools.cache
def service_model(service_name: str) -> ServiceModel:
    loader = create_loader()
    data = loader.load_service_model(service_name, "service-2")
    return ServiceModel(data, service_name=service_name)


def sagemaker_model() -> ServiceModel:
    return service_model(SAGEMAKER)


def logs_model() -> ServiceModel:
    return service_model(LOGS)


@functools.cache
def operation(service_name: str, name: str) -> OperationModel:
    return service_model(service_name).operation_model(name)


def shape(service_name: str, name: str) -> Shape:
    return service_model(service_name).shape_for(name)


def enum_values(name: str, service_name: str = SAGEMAKER) -> tuple[str, ...]:
    return tuple(shape(service_name, name).metadata.get("enum", ()))


def target_prefix(service_name: str) -> str:
    return str(service_model(service_name).metadata["targetPrefix"])

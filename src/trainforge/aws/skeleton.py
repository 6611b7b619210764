"""The dispatch table: operation name → handler, with input validation in front of every call.

Handlers take the request's params (a dict shaped like the operation's input) and return a dict
shaped like its output, or raise a ``ServiceError``. The HTTP gateway and the local CLI both call
``Dispatcher.call``, so a request is validated the same way whichever door it came in by.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trainforge.aws import spec
from trainforge.aws.validate import Validator
from trainforge.errors import UnknownOperation

Handler = Callable[[dict[str, Any]], dict[str, Any]]

# trainforge also reads channels from and writes artifacts to local paths (file:///x or /x)
# where SageMaker takes an S3 URI; see docs/wire-quirks.md.
LOCAL_PATH_PATTERN = r"file:///.*|/.*"
ALSO_ACCEPT = {"S3Uri": LOCAL_PATH_PATTERN}
# Required by the service for classic (non-serverless) training jobs, optional in the model.
ALSO_REQUIRED = {
    "CreateTrainingJobRequest": frozenset({"AlgorithmSpecification", "ResourceConfig"}),
}


class Dispatcher:
    def __init__(self, handlers: Mapping[tuple[str, str], Handler]) -> None:
        self._handlers = dict(handlers)
        self._validator = Validator(also_accept=ALSO_ACCEPT, also_required=ALSO_REQUIRED)

    def supports(self, service_name: str, operation_name: str) -> bool:
        return (service_name, operation_name) in self._handlers

    def validate(self, service_name: str, operation_name: str, params: dict[str, Any]) -> None:
        operation = spec.operation(service_name, operation_name)
        if operation.input_shape is not None:
            self._validator.validate(operation.input_shape, params)

    def call(
        self, service_name: str, operation_name: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        handler = self._handlers.get((service_name, operation_name))
        if handler is None:
            raise UnknownOperation(f"Operation {operation_name} is not supported by trainforge.")
        self.validate(service_name, operation_name, params)
        return handler(params)

"""The dispatch table and the one place that turns results and errors into responses.

Handlers take the request's params (a dict shaped like the operation's input) and return a dict
shaped like its output, or raise a ``ServiceError``. ``Dispatcher.call`` validates the input in
front of every handler, so the HTTP gateway and the local CLI check a request the same way;
``Dispatcher.respond`` adds the wire: status, ``x-amzn-RequestId``, ``x-amzn-ErrorType`` and the
JSON body serialized by the output shape. An error that is not a ``ServiceError`` becomes
``InternalFailure`` (HTTP 500) and is logged with its request id, never sent as a trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from trainforge.aws import shapes
from trainforge.aws.serializer import dumps, error_body, to_wire
from trainforge.aws.validate import Validator
from trainforge.errors import (
    InternalFailure,
    ServiceError,
    ServiceUnavailable,
    StoreFull,
    UnknownOperation,
)

if TYPE_CHECKING:
    # The wire parser (botocore's model) is the gateway's; the CLI validates without it.
    from trainforge.aws.parser import Call

Handler = Callable[[dict[str, Any]], dict[str, Any]]
log = logging.getLogger("trainforge.api")

CONTENT_TYPE = "application/x-amz-json-1.1"
# trainforge also reads channels from and writes artifacts to local paths (file:///x or /x)
# where SageMaker takes an S3 URI; see docs/behaviour.md, "Deliberate differences".
LOCAL_PATH_PATTERN = r"file:///.*|/.*"
ALSO_ACCEPT = {"S3Uri": LOCAL_PATH_PATTERN}
# Required by the service for classic (non-serverless) training jobs, optional in the model.
ALSO_REQUIRED = {
    "CreateTrainingJobRequest": frozenset({"AlgorithmSpecification", "ResourceConfig"}),
}


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def error_response(error: ServiceError, request_id: str) -> Response:
    return Response(
        error.status,
        [
            ("content-type", CONTENT_TYPE),
            ("x-amzn-requestid", request_id),
            ("x-amzn-errortype", error.code),
        ],
        dumps(error_body(error)),
    )


class Encoder(Protocol):
    """A wire protocol's way of answering (``trainforge.aws.protocols``); without one, a call is
    answered in AWS JSON 1.1."""

    def success(self, call: Call, result: dict[str, Any], request_id: str) -> Response: ...

    def failure(self, error: ServiceError, request_id: str, service: str | None) -> Response: ...


class Dispatcher:
    def __init__(self, handlers: Mapping[tuple[str, str], Handler]) -> None:
        self._handlers = dict(handlers)
        self._validator = Validator(also_accept=ALSO_ACCEPT, also_required=ALSO_REQUIRED)

    def validate(self, service_name: str, operation_name: str, params: dict[str, Any]) -> None:
        shape = shapes.input_shape(service_name, operation_name)
        if shape is not None:
            self._validator.validate(shape, params)

    def call(
        self, service_name: str, operation_name: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        handler = self._handlers.get((service_name, operation_name))
        if handler is None:
            raise UnknownOperation(f"Operation {operation_name} is not supported by trainforge.")
        self.validate(service_name, operation_name, params)
        return handler(params)

    def respond(
        self, call: Call, request_id: str | None = None, encoder: Encoder | None = None
    ) -> Response:
        if not request_id:
            import uuid  # only where a request is answered: `trainforge run` answers none

            request_id = str(uuid.uuid4())

        def fail(error: ServiceError) -> Response:
            if encoder is not None:
                return encoder.failure(error, request_id, call.service)
            return error_response(error, request_id)

        try:
            result = self.call(call.service, call.operation, call.params)
            if encoder is not None:
                return encoder.success(call, result, request_id)
            body = dumps(to_wire(shapes.output_shape(call.service, call.operation), result))
        except ServiceError as exc:
            return fail(exc)
        except StoreFull as exc:
            log.warning("request %s (%s.%s): %s", request_id, call.service, call.operation, exc)
            return fail(
                ServiceUnavailable(
                    "trainforge cannot store this request: the disk of its job store is full. "
                    "Reads still work; try again once there is space."
                )
            )
        except Exception:
            log.exception("request %s (%s.%s) failed", request_id, call.service, call.operation)
            return fail(InternalFailure(f"An internal error occurred. Request id: {request_id}"))
        return Response(
            200, [("content-type", CONTENT_TYPE), ("x-amzn-requestid", request_id)], body
        )

"""The roots of trainforge's own exceptions.

Two families: ``ServiceError`` is what an API call answers (an AWS error code, an HTTP status and
a message, turned into a response in one place by the protocol layer); ``JobFailure`` is what ends
a running job, and says whose fault it was, which becomes the prefix of ``FailureReason``.
"""

from __future__ import annotations

import enum


class TrainforgeError(Exception):
    """Root of every exception trainforge raises on purpose."""


class ServiceError(TrainforgeError):
    """An error answered to an API caller as ``{"__type": code, "message": message}``."""

    code = "InternalFailure"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(ServiceError):
    code = "ValidationException"


class ResourceInUse(ServiceError):
    code = "ResourceInUse"


class ResourceLimitExceeded(ServiceError):
    code = "ResourceLimitExceeded"


class LogsResourceNotFound(ServiceError):
    code = "ResourceNotFoundException"


class LogsInvalidParameter(ServiceError):
    code = "InvalidParameterException"


class SerializationError(ServiceError):
    code = "SerializationException"


class UnknownOperation(ServiceError):
    code = "UnknownOperationException"


class MissingAuthenticationToken(ServiceError):
    code = "MissingAuthenticationTokenException"
    status = 403


class IncompleteSignature(ServiceError):
    code = "IncompleteSignature"
    status = 403


class InvalidSignature(ServiceError):
    code = "InvalidSignatureException"
    status = 403


class UnrecognizedClient(ServiceError):
    code = "UnrecognizedClientException"
    status = 403


class InternalFailure(ServiceError):
    code = "InternalFailure"
    status = 500


class Fault(enum.StrEnum):
    """Whose fault a failed job is; the value is the FailureReason prefix SageMaker uses."""

    CLIENT = "ClientError"
    ALGORITHM = "AlgorithmError"
    PLATFORM = "InternalServerError"


class JobFailure(TrainforgeError):
    """Ends a job as Failed. ``reason`` is what the user reads after the prefix."""

    def __init__(self, fault: Fault, reason: str) -> None:
        super().__init__(f"{fault.value}: {reason}")
        self.fault = fault
        self.reason = reason

    @property
    def failure_reason(self) -> str:
        return f"{self.fault.value}: {self.reason}"


class EngineError(TrainforgeError):
    """The container engine could not do what was asked (unreachable, refused, broken)."""


class ContainerStartError(EngineError):
    """The engine created the container but could not start its process (bad entrypoint,
    missing executable): the image's fault, not the platform's."""


class ImageNotFound(EngineError):
    """The training image is not on this machine and could not be pulled."""


class StorageError(TrainforgeError):
    """An object store or local path could not be read or written."""

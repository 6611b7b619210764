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


class ServiceUnavailable(ServiceError):
    code = "ServiceUnavailable"
    status = 503


class RequestEntityTooLarge(ServiceError):
    code = "RequestEntityTooLargeException"
    status = 413


# CloudWatch's errors carry the codes of its query protocol (the models' ``error.code``), which
# every protocol it speaks reports to clients (x-amzn-query-error).
class MetricsInvalidParameterValue(ServiceError):
    code = "InvalidParameterValue"


class MetricsMissingParameter(ServiceError):
    code = "MissingParameter"


class MetricsInvalidParameterCombination(ServiceError):
    code = "InvalidParameterCombination"


class MetricsValidationError(ServiceError):
    code = "ValidationError"


class MetricsInvalidNextToken(ServiceError):
    code = "InvalidNextToken"


# IAM's, as its model names them (query protocol).
class IamInvalidInput(ServiceError):
    code = "InvalidInput"


class Fault(enum.StrEnum):
    """Whose fault a failed job is; the value is the FailureReason prefix SageMaker uses."""

    CLIENT = "ClientError"
    ALGORITHM = "AlgorithmError"
    OUT_OF_MEMORY = "OutOfMemoryError"
    CAPACITY = "CapacityError"
    PLATFORM = "InternalServerError"


# SageMaker returns at most 1024 characters of FailureReason.
FAILURE_REASON_MAX = 1024


class JobFailure(TrainforgeError):
    """Ends a job as Failed. ``reason`` is what the user reads after the fault's prefix; every
    failed job's FailureReason is made here, so no other module spells a prefix."""

    def __init__(self, fault: Fault, reason: str) -> None:
        super().__init__(f"{fault.value}: {reason}")
        self.fault = fault
        self.reason = reason

    @property
    def failure_reason(self) -> str:
        return f"{self.fault.value}: {self.reason}"[:FAILURE_REASON_MAX]

    @classmethod
    def client(cls, reason: str) -> JobFailure:
        return cls(Fault.CLIENT, reason)

    @classmethod
    def platform(cls, reason: str) -> JobFailure:
        """trainforge, its engine or its store failed the job; the user did nothing wrong."""
        return cls(Fault.PLATFORM, reason)

    @classmethod
    def algorithm(cls, failure_text: str | None, exit_code: int) -> JobFailure:
        """``AlgorithmError: <failure file>, exit code: N`` (spec §5.2)."""
        return cls(Fault.ALGORITHM, f"{(failure_text or '').rstrip()}, exit code: {exit_code}")

    @classmethod
    def capacity(cls, detail: str) -> JobFailure:
        """The machines cannot hold the job (SageMaker's CapacityError)."""
        return cls(Fault.CAPACITY, f"Unable to provision requested ML compute capacity. {detail}")

    @classmethod
    def out_of_memory(cls) -> JobFailure:
        return cls(
            Fault.OUT_OF_MEMORY,
            "Please use an instance type with more memory, or reduce the size of job data "
            "processed on an instance.",
        )


class EngineError(TrainforgeError):
    """The container engine could not do what was asked (unreachable, refused, broken)."""


class ContainerStartError(EngineError):
    """The engine created the container but could not start its process (bad entrypoint,
    missing executable): the image's fault, not the platform's."""


class ImageNotFound(EngineError):
    """The training image is not on this machine and could not be pulled."""


class RegistryLoginFailed(ImageNotFound):
    """The credentials for the image's registry could not be had (an ECR login refused or
    unreachable): the image cannot be pulled, the job's fault as a missing image is."""


class StorageError(TrainforgeError):
    """An object store or local path could not be read or written."""


class StorageCancelled(TrainforgeError):
    """A transfer stopped early because the job is being stopped (not a storage failure)."""


class NoSpace(StorageError):
    """A disk trainforge writes to is full (ENOSPC)."""


class StoreFull(TrainforgeError):
    """The job store's disk is full: the write did not happen and may be retried once space
    returns. Reads still work."""


class CredentialsError(TrainforgeError):
    """AWS credentials for a job's role could not be had (AssumeRole refused, a profile without
    keys), or the credentials endpoint could not be put in place. The message never carries a
    secret."""

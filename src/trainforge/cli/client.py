"""How the CLI reaches trainforge: the local store in-process, or a running server over the AWS
API. Both answer ``call(service, operation, params)`` with plain dicts and raise ``ServiceError``,
so every command works the same way against either.
"""

from __future__ import annotations

from typing import Any, Protocol

from trainforge.errors import ServiceError


class Client(Protocol):
    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]: ...


class LocalClient:
    def __init__(self, context: Any) -> None:
        self.context = context

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return dict(self.context.dispatcher.call(service, operation, params))


class RemoteError(ServiceError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class RemoteClient:
    """boto3 against a trainforge server (``TRAINFORGE_SERVER_URL``)."""

    def __init__(self, url: str, region: str) -> None:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        session = boto3.session.Session()
        # A server without access keys checks no signature: without credentials of their own,
        # the commands send unsigned requests rather than fail before asking.
        config = Config(signature_version=UNSIGNED) if session.get_credentials() is None else None
        self._clients = {
            service: session.client(service, endpoint_url=url, region_name=region, config=config)
            for service in ("sagemaker", "logs", "cloudwatch")
        }

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        from botocore import xform_name
        from botocore.exceptions import ClientError

        client = self._clients[service]
        try:
            result = getattr(client, xform_name(operation))(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise RemoteError(error.get("Code", "Error"), error.get("Message", str(exc))) from exc
        result.pop("ResponseMetadata", None)
        return dict(result)

"""How a refusal from an AWS service reads in trainforge's messages: ``Code: Message``, as the
service sent them. Shared by the client modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Imported where a call is made: botocore's exceptions are not a command's start-up cost.
    from botocore.exceptions import ClientError


def refusal(exc: ClientError) -> str:
    """``Code: Message`` of what the service answered (the code alone when it gave no
    message)."""
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")

"""The AWS endpoint: one raw ASGI application with the endpoints of SageMaker, CloudWatch Logs,
CloudWatch, IAM and STS (``POST /`` for AWS JSON and query requests, ``POST /service/...`` for
RPC v2 CBOR), plus ``GET /ping`` for health checks; ``server.web`` mounts it as routes of the
Starlette application (which owns the lifespan). It reads the request, verifies its signature
when access keys are configured, and hands it to the dispatcher; everything about the wire
format lives in ``trainforge.aws`` (``protocols.select`` says which protocol a request speaks).

Parsing, validation and the handlers run on worker threads, so one large or slow request never
holds up the others; only a small DescribeTrainingJob is answered on the event loop, since a
SQLite read of one row is faster than a thread hop. A body over 16 MiB is refused with 413 as
soon as its size is known, without being read to its end.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from trainforge.aws.auth import IncomingRequest, SigV4Verifier
from trainforge.aws.protocols import HttpRequest, select, service_hint
from trainforge.aws.skeleton import Dispatcher, Response, error_response
from trainforge.errors import (
    InternalFailure,
    RequestEntityTooLarge,
    ServiceError,
    TrainforgeError,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("trainforge.server")

INLINE_TARGET = "SageMaker.DescribeTrainingJob"
INLINE_MAX_BYTES = 4096
MAX_BODY_BYTES = 16 << 20
DRAIN_BYTES = 64 << 20
WORKER_THREADS = 16


class BodyTooLarge(TrainforgeError):
    """A request body over MAX_BODY_BYTES (answered 413, never read into memory whole)."""


class ApiApp:
    def __init__(self, dispatcher: Dispatcher, verifier: SigV4Verifier | None = None) -> None:
        self.dispatcher = dispatcher
        self.verifier = verifier
        self._pool = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="api")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            body = await self._body(scope, receive)
        except BodyTooLarge:
            response = error_response(
                RequestEntityTooLarge(
                    f"The request body is larger than the {MAX_BODY_BYTES} bytes trainforge "
                    "accepts."
                ),
                str(uuid.uuid4()),
            )
        else:
            response = await self._handle(scope, body)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode(), v.encode()) for k, v in response.headers],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    @staticmethod
    async def _body(scope: Scope, receive: Receive) -> bytes:
        """The whole body, or ``BodyTooLarge``. A body over the limit is read to its end and
        dropped (so the client, still sending, gets the answer), up to ``DRAIN_BYTES``; one
        announced larger than that is refused at once."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > DRAIN_BYTES:
                raise BodyTooLarge()
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > DRAIN_BYTES:
                raise BodyTooLarge()
            if size <= MAX_BODY_BYTES:
                chunks.append(chunk)
            if not message.get("more_body"):
                if size > MAX_BODY_BYTES:
                    raise BodyTooLarge()
                return b"".join(chunks)

    async def _handle(self, scope: Scope, body: bytes) -> Response:
        method = scope["method"]
        path = scope.get("raw_path", b"/").decode("latin-1").split("?", 1)[0] or "/"
        if method == "GET" and path == "/ping":
            return Response(200, [("content-type", "text/plain")], b"ok\n")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("x-amz-target") == INLINE_TARGET and len(body) <= INLINE_MAX_BYTES:
            return self._respond(scope, method, path, headers, body)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, self._respond, scope, method, path, headers, body
        )

    def _respond(
        self, scope: Scope, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Response:
        request_id = str(uuid.uuid4())
        request = HttpRequest(method, path, headers, body)
        protocol = select(request)
        try:
            protocol.route(request)
            if self.verifier is not None:
                self.verifier.verify(
                    IncomingRequest(
                        method=method,
                        path=path,
                        query=scope.get("query_string", b"").decode("latin-1"),
                        headers=headers,
                        body=body,
                    )
                )
            call = protocol.parse(request)
        except ServiceError as exc:
            return protocol.failure(exc, request_id, service_hint(request))
        except Exception:
            log.exception("request %s could not be read", request_id)
            failure = InternalFailure(f"An internal error occurred. Request id: {request_id}")
            return protocol.failure(failure, request_id, service_hint(request))
        return self.dispatcher.respond(call, request_id, protocol)

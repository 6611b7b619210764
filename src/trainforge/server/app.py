"""The HTTP wiring: one ASGI application with one endpoint, ``POST /``, as SageMaker and
CloudWatch Logs have, plus ``GET /ping`` for health checks. It reads the request, verifies its
signature when access keys are configured, and hands it to the dispatcher; everything about the
wire format lives in ``trainforge.aws``.

Handlers that may block (CreateTrainingJob lists S3, Stop and Delete write) run on worker
threads; reads are answered on the event loop, since a SQLite read is faster than a thread hop.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from trainforge.aws.auth import IncomingRequest, SigV4Verifier
from trainforge.aws.parser import parse
from trainforge.aws.skeleton import Dispatcher, Response, error_response
from trainforge.errors import ServiceError, UnknownOperation

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("trainforge.server")

INLINE_OPERATIONS = frozenset(
    {
        "DescribeTrainingJob",
        "ListTrainingJobs",
        "ListTags",
        "DescribeLogStreams",
        "GetLogEvents",
        "FilterLogEvents",
    }
)
MAX_BODY_BYTES = 16 << 20


class ApiApp:
    def __init__(
        self,
        dispatcher: Dispatcher,
        verifier: SigV4Verifier | None = None,
        on_startup: Callable[[], None] | None = None,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.verifier = verifier
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await self._body(receive)
        response = await self._handle(scope, body)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode(), v.encode()) for k, v in response.headers],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.on_startup is not None:
                        await asyncio.to_thread(self.on_startup)
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.on_shutdown is not None:
                    await asyncio.to_thread(self.on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _body(receive: Receive) -> bytes:
        chunks = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_BODY_BYTES:
                chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _handle(self, scope: Scope, body: bytes) -> Response:
        request_id = str(uuid.uuid4())
        method = scope["method"]
        path = scope.get("raw_path", b"/").decode("latin-1").split("?", 1)[0] or "/"
        if method == "GET" and path == "/ping":
            return Response(200, [("content-type", "text/plain")], b"ok\n")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if method != "POST" or path != "/":
                raise UnknownOperation(f"{method} {path} is not an operation of this service.")
            if len(body) > MAX_BODY_BYTES:
                raise UnknownOperation("The request body is too large.")
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
            call = parse(headers.get("x-amz-target"), body)
        except ServiceError as exc:
            return error_response(exc, request_id)
        if call.operation in INLINE_OPERATIONS:
            return self.dispatcher.respond(call, request_id)
        return await asyncio.to_thread(self.dispatcher.respond, call, request_id)

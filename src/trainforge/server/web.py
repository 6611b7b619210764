"""The HTTP application: Starlette, with the AWS endpoint (``server.app.ApiApp``, a raw ASGI app
so the hot DescribeTrainingJob path stays as short as it was) on ``POST /``, ``/service/...``,
``GET /ping`` and every path that is not the dashboard's, and the dashboard (``trainforge.ui``)
under ``/ui``. Owns the lifespan: the scheduler starts before the first request and stops after
the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from trainforge.server.app import ApiApp
from trainforge.ui.routes import Ui

log = logging.getLogger("trainforge.server")


def web_app(
    api: ApiApp,
    ui: Ui,
    on_startup: Callable[[], None] | None = None,
    on_shutdown: Callable[[], None] | None = None,
) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:
            try:
                await asyncio.to_thread(on_startup)
            except Exception:
                log.exception("start-up failed")
                raise
        try:
            yield
        finally:
            if on_shutdown is not None:
                await asyncio.to_thread(on_shutdown)
            api.close()

    app = Starlette(
        routes=[
            Route("/", api),
            Mount("/service", app=api),
            *ui.routes(),
        ],
        lifespan=lifespan,
    )
    # Any other path or method is the AWS endpoint's to answer, as it always was (its errors
    # name the protocol's own codes).
    app.router.default = api
    app.router.redirect_slashes = False
    return app

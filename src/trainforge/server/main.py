"""``trainforge serve``: the composition of the API server (store, scheduler, dispatcher, SigV4)
and its start under uvicorn. Binds 127.0.0.1 by default; any other address requires access keys,
and with access keys configured every request must be signed with one of them.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from typing import Any

from trainforge.aws.auth import SigV4Verifier
from trainforge.aws.skeleton import Dispatcher, Handler
from trainforge.context import Context
from trainforge.scheduler.leases import owner_id
from trainforge.scheduler.scheduler import Scheduler
from trainforge.server.app import ApiApp
from trainforge.server.http import guarded_protocol
from trainforge.server.web import web_app
from trainforge.settings import Settings
from trainforge.ui.auth import Sessions
from trainforge.ui.routes import Ui

log = logging.getLogger("trainforge.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server:
    """Everything a running server is made of, built once from the Settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = Context(settings)
        self.scheduler = Scheduler(
            self.context.lifecycle(owner_id("server")), settings.max_concurrent_jobs
        )
        handlers = self.context.handlers()
        create = handlers[("sagemaker", "CreateTrainingJob")]
        stop = handlers[("sagemaker", "StopTrainingJob")]

        def create_and_wake(params: dict[str, Any]) -> dict[str, Any]:
            result = create(params)
            self.scheduler.wake()
            return result

        def stop_and_deliver(params: dict[str, Any]) -> dict[str, Any]:
            result = stop(params)
            self.scheduler.stop_requested(params["TrainingJobName"])
            return result

        wired: dict[tuple[str, str], Handler] = {
            **handlers,
            ("sagemaker", "CreateTrainingJob"): create_and_wake,
            ("sagemaker", "StopTrainingJob"): stop_and_deliver,
        }
        verifier = SigV4Verifier(settings.access_keys) if settings.access_keys else None
        dispatcher = Dispatcher(wired)
        self.app = web_app(
            ApiApp(dispatcher, verifier),
            Ui(dispatcher.call, Sessions(settings.access_keys)),
            on_startup=self._start,
            on_shutdown=self.scheduler.close,
        )

    def _start(self) -> None:
        self.context.prepare_credentials()
        self.scheduler.start()


def serve(settings: Settings) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not is_loopback(settings.host) and not settings.access_keys:
        print(
            f"trainforge: refusing to listen on {settings.host}: a non-loopback address needs "
            "access keys for SigV4 verification (TRAINFORGE_ACCESS_KEYS=ID:SECRET).",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    server = Server(settings)
    config = uvicorn.Config(
        server.app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        access_log=False,
        log_level="warning",
        http=guarded_protocol(
            settings.http_header_timeout_seconds,
            settings.http_body_timeout_seconds,
            settings.http_max_connections,
        ),
    )
    log.info(
        "trainforge serving the SageMaker, CloudWatch Logs, CloudWatch metrics, IAM and STS APIs "
        "on http://%s:%d and the dashboard on http://%s:%d/ui/ (home %s)",
        settings.host,
        settings.port,
        settings.host,
        settings.port,
        settings.home,
    )
    uvicorn.Server(config).run()
    return 0

"""The dashboard's routes under ``/ui``: its pages (static HTML of this package, filled in by its
own scripts), its assets, the login, and the JSON endpoints the pages read (``/ui/api/...``).
Without a session a page redirects to the login and a data endpoint answers 401, never data; a
change needs the session's CSRF token in ``X-CSRF-Token``. Every answer forbids inline scripts
(Content-Security-Policy), so even a line that slipped past escaping could not run.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from trainforge.errors import ServiceError, ValidationError
from trainforge.ui import data
from trainforge.ui.auth import COOKIE, Session, Sessions

log = logging.getLogger("trainforge.ui")

ASSETS = resources.files("trainforge.ui") / "assets"
ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
MAX_CREATE_BYTES = 1 << 20

Endpoint = Callable[[Request], Awaitable[Response]]


def _asset(name: str) -> bytes | None:
    if "/" in name or name.startswith(".") or not any(name.endswith(e) for e in ASSET_TYPES):
        return None
    path = ASSETS / name
    return path.read_bytes() if path.is_file() else None


def _data_block(value: Any) -> bytes:
    """JSON inside a page, as a data block no browser runs; ``<``, ``>`` and ``&`` escaped so
    nothing in it can end the block."""
    text = json.dumps(value, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="tf-first">{text}</script>'.encode()


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status,
        headers=SECURITY_HEADERS,
        media_type="application/json",
    )


def _error(exc: ServiceError) -> Response:
    return _json({"error": exc.code, "message": exc.message}, exc.status)


class Ui:
    def __init__(self, call: data.Call, sessions: Sessions) -> None:
        self.call = call
        self.sessions = sessions
        self._pages = {
            name: _asset(name) or b"" for name in ("list.html", "job.html", "compare.html")
        }

    # -- plumbing ------------------------------------------------------------------------------

    def _session(self, request: Request) -> Session | None:
        return self.sessions.session(request.cookies.get(COOKIE))

    def page(self, name: str, first: Callable[[Request, Session], Any] | None = None) -> Endpoint:
        """A page; with ``first``, the data the page would fetch first comes inside it, as a
        JSON block (not a script), which saves the page a round trip before it shows it."""

        async def endpoint(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                target = urllib.parse.quote(request.url.path, safe="/")
                return RedirectResponse(f"/ui/login?next={target}", 303, SECURITY_HEADERS)
            body = self._pages[name]
            if first is not None:
                try:
                    found = await run_in_threadpool(first, request, session)
                except ServiceError:
                    found = None  # the page asks again and shows the error
                if found is not None:
                    body = body.replace(b"</body>", _data_block(found) + b"\n</body>", 1)
            return Response(body, headers=SECURITY_HEADERS, media_type=ASSET_TYPES[".html"])

        return endpoint

    def api(self, work: Callable[[Request, Session], Any], change: bool = False) -> Endpoint:
        """A data endpoint: 401 without a session, 403 for a change without its CSRF token,
        the API's error for the API's errors, else ``work``'s result as JSON."""

        async def endpoint(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return _json({"error": "Unauthorized", "message": "Log in first."}, 401)
            if change and not self.sessions.csrf_ok(session, request.headers.get("x-csrf-token")):
                return _json({"error": "Forbidden", "message": "Missing or wrong CSRF token."}, 403)
            body = await request.body() if change else b""
            if len(body) > MAX_CREATE_BYTES:
                return _json({"error": "TooLarge", "message": "The request is too large."}, 413)
            request.state.body = body
            try:
                return _json(await run_in_threadpool(work, request, session))
            except ServiceError as exc:
                return _error(exc)
            except Exception:
                log.exception("dashboard request %s failed", request.url.path)
                return _json({"error": "InternalFailure", "message": "An internal error."}, 500)

        return endpoint

    # -- data ----------------------------------------------------------------------------------

    def jobs(self, request: Request, _: Session) -> dict[str, Any]:
        q = request.query_params
        try:
            size = int(q.get("size", "25"))
        except ValueError:
            raise ValidationError("size must be a number.") from None
        return data.jobs_page(
            self.call,
            q.get("status") or None,
            q.get("q") or None,
            q.get("sort", "CreationTime"),
            q.get("order", "Descending"),
            size,
            q.get("token") or None,
        )

    def job(self, request: Request, _: Session) -> dict[str, Any]:
        return data.job_detail(self.call, request.path_params["name"])

    def logs(self, request: Request, _: Session) -> dict[str, Any]:
        return data.log_tail(
            self.call, request.path_params["name"], request.query_params.get("cursor")
        )

    def metrics(self, request: Request, _: Session) -> dict[str, Any]:
        return data.metrics(self.call, request.path_params["name"])

    def stop(self, request: Request, _: Session) -> dict[str, Any]:
        name = request.path_params["name"]
        self.call("sagemaker", "StopTrainingJob", {"TrainingJobName": name})
        return data.job_detail(self.call, name)

    def create(self, request: Request, _: Session) -> dict[str, Any]:
        try:
            params = json.loads(request.state.body or b"{}")
        except ValueError:
            raise ValidationError("The request is not JSON.") from None
        if not isinstance(params, dict):
            raise ValidationError("The request must be a JSON object.")
        return self.call("sagemaker", "CreateTrainingJob", params)

    def session_info(self, _: Request, session: Session) -> dict[str, Any]:
        return {"user": session.user, "csrf": session.csrf, "login": self.sessions.required}

    # -- login ---------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if not self.sessions.required:
            return RedirectResponse("/ui/", 303, SECURITY_HEADERS)
        return Response(_asset("login.html"), headers=SECURITY_HEADERS, media_type="text/html")

    async def login(self, request: Request) -> Response:
        body = await request.body()
        form = urllib.parse.parse_qs(body[:8192].decode("utf-8", "replace"))
        key_id = (form.get("access_key_id") or [""])[0]
        secret = (form.get("secret_access_key") or [""])[0]
        target = (form.get("next") or ["/ui/"])[0]
        if not target.startswith("/ui/") or target.startswith("//"):
            target = "/ui/"
        token = self.sessions.login(key_id, secret) if self.sessions.required else None
        if self.sessions.required and token is None:
            return RedirectResponse(
                f"/ui/login?failed=1&next={urllib.parse.quote(target, safe='/')}",
                303,
                SECURITY_HEADERS,
            )
        response = RedirectResponse(target, 303, SECURITY_HEADERS)
        if token is not None:
            response.set_cookie(
                COOKIE, token, httponly=True, samesite="strict", path="/ui", secure=False
            )
        return response

    async def logout(self, request: Request) -> Response:
        self.sessions.logout(request.cookies.get(COOKIE))
        response = RedirectResponse("/ui/login", 303, SECURITY_HEADERS)
        response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
        return response

    async def asset(self, request: Request) -> Response:
        name = request.path_params["file"]
        body = _asset(name)
        if body is None:
            return Response("not found\n", 404, media_type="text/plain")
        headers = {**SECURITY_HEADERS, "cache-control": "max-age=300"}
        return Response(body, headers=headers, media_type=ASSET_TYPES["." + name.rsplit(".", 1)[1]])

    def routes(self) -> list[BaseRoute]:
        async def root(_: Request) -> Response:
            return RedirectResponse("/ui/", 307)

        return [
            Route("/ui", root),
            Route("/ui/", self.page("list.html", self.jobs)),
            Route("/ui/jobs/{name}", self.page("job.html")),
            Route("/ui/compare", self.page("compare.html")),
            Route("/ui/login", self.login_page),
            Route("/ui/login", self.login, methods=["POST"]),
            Route("/ui/logout", self.logout, methods=["POST"]),
            Route("/ui/assets/{file}", self.asset),
            Route("/ui/api/session", self.api(self.session_info)),
            Route("/ui/api/jobs", self.api(self.jobs)),
            Route("/ui/api/jobs", self.api(self.create, change=True), methods=["POST"]),
            Route("/ui/api/jobs/{name}", self.api(self.job)),
            Route("/ui/api/jobs/{name}/logs", self.api(self.logs)),
            Route("/ui/api/jobs/{name}/metrics", self.api(self.metrics)),
            Route("/ui/api/jobs/{name}/stop", self.api(self.stop, change=True), methods=["POST"]),
        ]

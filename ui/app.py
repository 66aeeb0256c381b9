"""The approver UI and the JSON API as one FastAPI app.

``create_app`` wires the pages, the API, sessions and error handling; the Temporal client is the
one given (tests) or connected from the settings (``fitnest ui``): at startup when Temporal answers,
else at the first request that needs it (``ui.cluster``). Until then those requests answer 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Match
from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from starters.client import NegotiationNotFound
from ui import api, pages, provider_sign_in
from ui.audit import AuditLog
from ui.cluster import Cluster
from ui.directory import Directory, DirectoryFile
from ui.inbox import InboxFilterError, PageTokens
from ui.oidc import OidcClient, OidcConfig
from ui.problems import ProblemError, not_json, problem_response, validation_problem
from ui.security import ApiKeyVerifier, Forbidden, SignInRequired, session_secret
from ui.sessions import SessionStore
from ui.throttle import Clock, SignInThrottle
from workers.client import ClusterUnreachable
from workers.settings import Settings

log = structlog.get_logger("fitnest.ui")

_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return pages.render(request, "error.html", status, title=title, detail=detail)


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, BaseRoute) and route.matches(request.scope)[0] != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def problem(request: Request, err: ProblemError) -> JSONResponse:
        return problem_response(request, err)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> Response:
        found = validation_problem(err)
        if _is_api(request):
            return problem_response(request, found)
        return _error_page(request, 422, "Invalid input", found.detail)

    @app.exception_handler(SignInRequired)
    async def sign_in_first(request: Request, _err: SignInRequired) -> HTMLResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return pages.render(request, "login.html", 401, next=target)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, err: Forbidden) -> HTMLResponse:
        return _error_page(request, 403, "Not allowed", err.reason)

    @app.exception_handler(NegotiationNotFound)
    async def not_found(request: Request, err: NegotiationNotFound) -> Response:
        if _is_api(request):
            return problem_response(request, ProblemError(404, "not-found", str(err)))
        return _error_page(request, 404, "Not found", str(err))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> Response:
        headers = dict(err.headers or {})
        if err.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        if _is_api(request):
            found = (
                not_json()
                if err.status_code == 400  # FastAPI's only 400: a body it cannot parse
                else ProblemError(err.status_code, "http", str(err.detail))
            )
            found.headers.update(headers)
            return problem_response(request, found)
        page = _error_page(request, err.status_code, "Error", str(err.detail))
        page.headers.update(headers)
        return page

    @app.exception_handler(InboxFilterError)
    async def bad_filter(request: Request, err: InboxFilterError) -> Response:
        # The API turns these into problems where it calls; a page shows the reason.
        if _is_api(request):
            return problem_response(request, ProblemError(422, "validation", str(err)))
        return _error_page(request, 422, "Filter not usable", str(err))

    async def unavailable(request: Request, err: Exception) -> Response:
        # The reason names Temporal's address: the operator's log gets it, the person does not.
        log.warning(
            "ui.temporal_unavailable",
            path=request.url.path,
            error=type(err).__name__,
            reason=str(err) or "no answer within the UI's deadline",
        )
        detail = "Temporal is not answering right now; try again in a moment"
        if _is_api(request):
            return problem_response(request, ProblemError(503, "unavailable", detail))
        return _error_page(request, 503, "Temporal unavailable", detail)

    app.add_exception_handler(RPCError, unavailable)
    app.add_exception_handler(ClusterUnreachable, unavailable)
    # An update that outlives its deadline (its result is unknown: a retry with the same message
    # id returns the first receipt).
    app.add_exception_handler(RPCTimeoutOrCancelledError, unavailable)


def create_app(
    settings: Settings,
    directory: Directory,
    client: Client | None = None,
    *,
    clock: Clock = time.monotonic,
    oidc: OidcClient | None = None,
    wall_clock: Clock = time.time,
) -> FastAPI:
    """The app; without ``client`` it connects to the cluster in ``settings`` (see ``ui.cluster``).

    ``clock`` times the sign-in throttle, ``wall_clock`` sessions and ID tokens (tests move them
    instead of waiting). Sign-in through the identity provider is on when ``settings`` name an
    issuer (``FITNEST_OIDC_*``), or with ``oidc`` given.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.cluster.try_at_start()
        yield
        app.state.sessions.close()

    app = FastAPI(
        title="Fitnest approver UI and API",
        version="1",
        description=(
            "Negotiations as durable Temporal workflows. The JSON API under `/api/v1` takes an "
            "API key as `Authorization: Bearer <key id>.<secret>`; errors are RFC 9457 problem "
            "details (`application/problem+json`)."
        ),
        lifespan=lifespan,
        # Swagger UI and ReDoc load scripts from a CDN: the app serves its own page instead.
        docs_url=None,
        redoc_url=None,
    )
    secret = session_secret(settings)
    app.state.settings = settings
    app.state.cluster = Cluster(settings, client)
    app.state.directory = directory
    # Read again when the file changes: someone removed from it loses access at once.
    app.state.directory_file = (
        DirectoryFile(settings.ui_directory, directory) if settings.ui_directory else None
    )
    app.state.api_keys = ApiKeyVerifier(directory)
    config = OidcConfig.from_settings(settings)
    app.state.oidc = oidc or (OidcClient(config, wall_clock) if config else None)
    app.state.audit = AuditLog(settings.ui_audit_log)
    app.state.throttle = SignInThrottle.from_settings(settings, clock)
    app.state.credential_checks = asyncio.Lock()  # see ui.security.checked_credentials
    app.state.page_tokens = PageTokens(secret)
    # Beside the audit log, the UI's other state, which every deployment keeps (the key file is
    # not used when FITNEST_UI_SECRET is set).
    app.state.sessions = SessionStore(
        settings.ui_audit_log.with_name("ui-sessions.sqlite"),
        settings.ui_session_lifetime_seconds,
        settings.ui_session_idle_seconds,
        wall_clock,
    )

    @app.middleware("http")
    async def current_directory(request: Request, call_next):  # type: ignore[no-untyped-def]
        source: DirectoryFile | None = app.state.directory_file
        if source is not None:
            found = source.current()
            if found is not app.state.directory:
                app.state.directory = found
                app.state.api_keys = ApiKeyVerifier(found)  # a removed key is refused at once
        return await call_next(request)

    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="fitnest_session",
        max_age=int(settings.ui_session_lifetime_seconds),
        # Lax: a link from a notification opens the page signed in; GETs change nothing and
        # every POST carries the CSRF token.
        same_site="lax",
        https_only=settings.ui_secure_cookie,
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        if not request.url.path.startswith(("/docs", "/redoc")):
            response.headers.update(_HEADERS)
        return response

    _install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(provider_sign_in.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app

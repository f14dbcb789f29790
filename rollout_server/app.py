"""The rollout server's HTTP application (FastAPI on uvicorn) around one vLLM async engine.

Endpoints (rollout_server.routes): POST /v1/samples (single-turn, n per image), POST /v1/episodes (paper
003 episodes, n per image), POST /v1/chat/completions (OpenAI-compatible, for teachers in dataset
construction), POST /v1/weights and POST /v1/adapters (change the policy; need the shared token), GET
/healthz, /readyz, /metrics (Prometheus). With a token, /metrics and /openapi.json want it too and the API
pages (/docs, /redoc) are off, as on the reward service (docs/SECURITY.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from rft.auth import bearer_refusal
from rft.http_schema import describe_request_bodies
from rollout_server.errors import RequestError
from rollout_server.routes import ROUTERS
from rollout_server.routes.bodies import REQUEST_BODIES, REQUEST_EXAMPLES
from rollout_server.service import Engine, RolloutService, service_of

log = logging.getLogger(__name__)


def create_app(build_engine: Callable[[], Engine], *, token: str | None) -> FastAPI:
    """The app; `build_engine()` builds vLLM's engine in a thread at start-up, while /healthz answers."""
    service = RolloutService(token)
    app = FastAPI(title="rollout_server", lifespan=_lifespan(service, build_engine))
    app.state.service = service
    for router in ROUTERS:
        app.include_router(router)
    # Starlette takes a handler for Exception as its 500 handler, and those of RequestError for itself.
    app.add_exception_handler(RequestError, error_response)
    app.add_exception_handler(Exception, error_response)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if token:
        app.add_middleware(TokenGate, service=service)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema with the request bodies the routes read themselves (rft.http_schema), built once."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        app.openapi_schema = describe_request_bodies(schema, REQUEST_BODIES, REQUEST_EXAMPLES)
    return app.openapi_schema


# What a server with a token keeps to its token's holders beyond the state-changing routes (which check it
# themselves): what it serves and how (the schema), and its counters. The pages are off, since a browser
# cannot send the token and the page would fetch the schema without it.
TOKEN_PATHS = {"/openapi.json": "openapi", "/metrics": "metrics"}
PAGE_PATHS = {"/docs", "/docs/oauth2-redirect", "/redoc"}


class TokenGate:
    """ASGI middleware of a server with a token: TOKEN_PATHS need 'Bearer <token>' (401 without, 403 with a
    wrong one), PAGE_PATHS are a 404; every other path passes untouched (its body is not read here)."""

    def __init__(self, app: ASGIApp, service: RolloutService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or (path not in TOKEN_PATHS and path not in PAGE_PATHS):
            await self.app(scope, receive, send)
            return
        if path in PAGE_PATHS:
            status, message = 404, "the API pages are off on a server with a token; GET /openapi.json with it"
        else:
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            refusal = bearer_refusal(authorization, self.service.token or "")
            if refusal is None:
                await self.app(scope, receive, send)
                return
            status, message = refusal.status, refusal.message
        self.service.metrics.requests.labels(TOKEN_PATHS.get(path, "docs"), str(status)).inc()
        await JSONResponse({"error": message}, status_code=status)(scope, receive, send)


def _lifespan(
    service: RolloutService, build_engine: Callable[[], Engine]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start(await asyncio.to_thread(build_engine))
        yield
        await service.stop()

    return lifespan


async def error_response(request: Request, error: Exception) -> JSONResponse:
    """The one place where an exception becomes an answer, `{"error": one line}`, counted under its endpoint:
    a `RequestError` with its own status, anything else a logged 500."""
    if isinstance(error, RequestError):
        status, message = error.status, str(error)
    else:
        # One line: Starlette re-raises the error once this answer is sent, and uvicorn logs its traceback.
        log.error("%s %s failed: %s: %s", request.method, request.url.path, type(error).__name__, error)
        status, message = 500, f"internal error ({type(error).__name__})"
    endpoint = getattr(request.scope.get("route"), "name", request.url.path)
    service_of(request).metrics.requests.labels(endpoint, str(status)).inc()
    return JSONResponse({"error": message}, status_code=status)

"""The rollout server's HTTP application (FastAPI on uvicorn) around one vLLM async engine.

Endpoints (rollout_server.routes): POST /v1/samples (single-turn, n per image), POST /v1/episodes (paper
003 episodes, n per image), POST /v1/chat/completions (OpenAI-compatible, for teachers in dataset
construction), POST /v1/weights and POST /v1/adapters (change the policy; need the shared token), GET
/healthz, /readyz, /metrics (Prometheus).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rollout_server.errors import RequestError
from rollout_server.routes import ROUTERS
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
    return app


def _lifespan(
    service: RolloutService, build_engine: Callable[[], Engine]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start(await asyncio.to_thread(build_engine))
        yield
        service.stop()

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

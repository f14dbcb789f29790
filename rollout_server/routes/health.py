"""GET /healthz (liveness: the process answers), /readyz (the engine serves: a dead or wedged engine is a
503; with the weights version and tool-call limit), /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rollout_server.service import Service

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict:
    return {"ok": True}


@router.get("/readyz")
async def readyz(service: Service) -> Response:
    problem = await service.check_ready()
    if problem is not None:
        return JSONResponse({"error": problem}, status_code=503)
    return JSONResponse(
        {
            "ready": True,
            "weights_version": service.weights_version,
            "max_tool_calls": service.engine.runner.max_tool_calls,
            "tools": list(service.engine.tokenizer.tool_names),
        }
    )


@router.get("/metrics")
async def metrics(service: Service) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

"""POST /v1/weights (full weights as safetensors) and POST /v1/adapters (a PEFT LoRA folder): both change
the policy, so both need the shared token, and both bump the weights version."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from rollout_server.api import AdapterRequest
from rollout_server.errors import BadRequest
from rollout_server.routes.bodies import parse_body, read_body
from rollout_server.service import Service

router = APIRouter()

MAX_WEIGHTS_BYTES = 64 * 2**30


@contextmanager
def weights_kept(prefix: str) -> Iterator[None]:
    """A 400 for any failure to load, since the old weights still serve; a dead engine stays a 500."""
    from vllm.v1.engine.exceptions import EngineDeadError

    try:
        yield
    except EngineDeadError:
        raise
    except Exception as error:
        raise BadRequest(prefix + (str(error) or type(error).__name__)) from error


@router.post("/v1/weights", name="weights")
async def weights(request: Request, service: Service) -> JSONResponse:
    service.authorize(request.headers.get("authorization", ""))
    payload = await read_body(request, max_bytes=MAX_WEIGHTS_BYTES)
    if not payload:
        raise BadRequest("send the weights as a safetensors body (application/octet-stream)")
    # A refused payload never reached the model; one that failed inside the load was rolled back. Either
    # way the previous weights serve and the version stays; only a dead engine is the server's error.
    with (
        service.serving("weights") as engine,
        weights_kept(prefix="could not load the weights: "),
    ):
        loaded = await engine.sampler.update_weights(payload)
    return JSONResponse({"loaded": loaded, "weights_version": service.weights_changed()})


@router.post("/v1/adapters", name="adapters")
async def adapters(request: Request, service: Service) -> JSONResponse:
    service.authorize(request.headers.get("authorization", ""))
    body = await parse_body(request, AdapterRequest)
    if not (Path(body.path) / "adapter_config.json").is_file():
        raise BadRequest(f"'{body.path}' is not a PEFT adapter folder (no adapter_config.json)")
    with (
        service.serving("adapters") as engine,
        weights_kept(prefix="could not load the adapter: "),
    ):
        await engine.sampler.add_adapter(body.name, Path(body.path))
    return JSONResponse({"adapter": body.name, "weights_version": service.weights_changed()})

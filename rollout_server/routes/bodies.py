"""The one place where request bodies are read and parsed, and response models written."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request, Response
from pydantic import BaseModel

from rollout_server.errors import PayloadTooLarge, bad_input

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, *, max_bytes: int | None = None) -> bytes:
    body = await request.body()
    if max_bytes is not None and len(body) > max_bytes:
        raise PayloadTooLarge(f"the request body is larger than {max_bytes} bytes")
    return body


async def parse_body(request: Request, model: type[M]) -> M:
    """The JSON body as `model`; a body that does not validate is a 400 (pydantic's message, one line)."""
    body = await read_body(request)
    with bad_input(ValueError):
        return model.model_validate_json(body)


def model_response(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")

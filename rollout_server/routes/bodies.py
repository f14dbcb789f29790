"""The one place where request bodies are read and parsed, and response models written.

Every route reads its body with its own limit (`read_body(max_bytes=...)`), so no body is held in memory
beyond it; a JSON body is validated off the event loop, and a body that does not validate is a 400 whose one
line names the field at fault. The routes' bodies are described in the OpenAPI schema from the same models
(`REQUEST_BODIES`, written in by rollout_server.app), with valid examples a client or a fuzzer starts from."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from fastapi import Request, Response
from PIL import Image
from pydantic import BaseModel, ValidationError

from rft.codec import encode_png
from rft.http_schema import BINARY
from rollout_server.api import AdapterRequest, EpisodeRequest, SampleRequest
from rollout_server.errors import BadRequest, PayloadTooLarge
from rollout_server.openai_compat import ChatRequest

M = TypeVar("M", bound=BaseModel)

# The limit of a JSON body whose route names none (POST /v1/adapters).
MAX_JSON_BODY_BYTES = 2**20

# The body of each POST route, by path, for the schema (rft.http_schema): the model the route parses.
REQUEST_BODIES = {
    "/v1/samples": SampleRequest,
    "/v1/episodes": EpisodeRequest,
    "/v1/chat/completions": ChatRequest,
    "/v1/adapters": AdapterRequest,
    "/v1/weights": BINARY,
}
_GREY_PNG = encode_png(Image.new("RGB", (32, 32), (128, 128, 128)))
_GREEDY = {"max_tokens": 8, "temperature": 0.0, "seed": 0}
REQUEST_EXAMPLES = {
    "/v1/samples": [
        {
            "images": [_GREY_PNG],
            "n": 1,
            "messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Real?"}]}],
            "sampling": _GREEDY,
        }
    ],
    "/v1/episodes": [{"images": [_GREY_PNG], "n": 1, "sampling": _GREEDY}],
    "/v1/chat/completions": [
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + _GREY_PNG}},
                        {"type": "text", "text": "Describe the face."},
                    ],
                }
            ],
            "max_tokens": 8,
            "temperature": 0.0,
        }
    ],
}

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The body, refused with a 413 as soon as it is known to pass `max_bytes`: from its Content-Length
    before anything is read, else while it streams in."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_body(request: Request, model: type[M], *, max_bytes: int = MAX_JSON_BODY_BYTES) -> M:
    """The JSON body as `model`; a body that does not validate is a 400 naming the field."""
    body = await read_body(request, max_bytes=max_bytes)
    try:
        return await asyncio.to_thread(model.model_validate_json, body)
    except ValidationError as error:
        raise BadRequest(validation_message(error)) from None


def validation_message(error: ValidationError) -> str:
    """One line naming the field at fault, e.g. `sampling.seed: Input should be a valid integer (got boolean)`:
    of several errors the deepest (for `str | list[...]`, the one inside the list a list was meant for)."""
    errors = error.errors(include_url=False)
    first = max(errors, key=lambda e: len(e["loc"]))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"].endswith("_type"):
        message += f" (got {_json_type(first['input'])})"
    more = len(errors) - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return f"{_field(first['loc'])}: {message}"


def _field(loc: tuple[int | str, ...]) -> str:
    """`messages[0].content[1].text` from pydantic's location, without the names it gives union members."""
    named = [
        f"[{part}]" if isinstance(part, int) else f".{part}"
        for part in loc
        if isinstance(part, int) or not _is_union_member(part)
    ]
    return "".join(named).lstrip(".") or "body"


def _is_union_member(name: str) -> bool:
    return "[" in name or "-" in name or name in {"str", "int", "float", "bool", "none"} or name[:1].isupper()


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {max_bytes} bytes")


def model_response(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")

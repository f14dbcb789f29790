"""What every request passes before the service does anything with it: its token, then its size.

Each refusal is an `HttpError`: a status and one line, bounded whatever the input was, answered as
`{"error": line}` (plus pydantic's typed problems as `detail` for a malformed body). A request's body is
read only after its token is checked, and only up to the limit: a declared `Content-Length` over it is
refused before a byte of the body is read, a streamed (chunked) body as soon as it passes the limit.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from rft.auth import bearer_refusal
from rft.errors import short_text
from rft.tools.errors import describe_validation_error, one_line

MAX_DETAILS = 20
MAX_LOCATION_PART = 64
MAX_LINE = 300
Model = TypeVar("Model", bound=BaseModel)


class HttpError(Exception):
    """A request the service answers with `status` and one line instead of a result."""

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = one_line(message, MAX_LINE)
        self.detail = detail

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        return body


def authorize(request: Request, token: str | None) -> None:
    """Refuse (401 without a token, 403 with a wrong one) a request to a service started with a token."""
    if token is None:
        return
    refusal = bearer_refusal(request.headers.get("authorization"), token)
    if refusal is not None:
        raise HttpError(refusal.status, refusal.message)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 once it is (or says it will be) over `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise HttpError(400, f"Content-Length is not a byte count: {short_text(declared, 40)}")
        digits = declared.lstrip("0") or "0"
        # The length check first: int() refuses strings of more than 4,300 digits.
        if len(digits) > len(str(limit)) or int(digits) > limit:
            raise HttpError(413, f"the body has {short_text(declared, 40)} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(model: type[Model], body: bytes) -> Model:
    """The body as a `model`, or a 422 naming what is wrong with it."""
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise invalid_body(error) from None


def invalid_body(error: ValidationError) -> HttpError:
    """A 422 naming the first problems in one line, with pydantic's typed problems (no input echoed, every
    location part bounded: a dict key comes from the client) for a client to act on."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    detail = [
        {
            "type": problem["type"],
            "loc": _bounded_loc(problem["loc"]),
            "msg": one_line(problem["msg"], MAX_LINE),
        }
        for problem in problems[:MAX_DETAILS]
    ]
    return HttpError(422, describe_validation_error(error, root="body"), detail)


def _bounded_loc(loc: tuple[int | str, ...]) -> list[int | str]:
    return [part if isinstance(part, int) else short_text(part, MAX_LOCATION_PART) for part in loc]

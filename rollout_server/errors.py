"""The errors a request is answered with: each carries its HTTP status and a one-line message, and the app's
one exception handler (rollout_server.app) turns it into `{"error": message}`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def one_line(text: str, limit: int = 500) -> str:
    """The first lines of `text` as one short line (pydantic's messages span several)."""
    return " ".join(text.splitlines()[:3])[:limit]


class RequestError(Exception):
    """A request the server refuses; `status` is the HTTP status it is answered with."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class BadRequest(RequestError):
    status = 400


class Forbidden(RequestError):
    """Missing or wrong token on a state-changing endpoint (403, which clients and tests expect)."""

    status = 403


class PayloadTooLarge(RequestError):
    status = 413


class EngineNotReady(RequestError):
    """The engine is still starting: a 503, which `RolloutClient` retries instead of dropping the worker."""

    status = 503


@contextmanager
def bad_input(*kinds: type[Exception], prefix: str = "") -> Iterator[None]:
    """Answer `kinds` raised inside the block with a 400: for the calls that reject the request's own input
    (pydantic, the image decoder, the chat template, vLLM's prompt checks all raise ValueError)."""
    try:
        yield
    except kinds as error:
        raise BadRequest(prefix + (str(error) or type(error).__name__)) from error

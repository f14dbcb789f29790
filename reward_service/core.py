"""What a reward-service replica computes, as plain functions: the same code runs in Ray replicas and in the
in-process mode, so the service can only add transport, never change a score."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from reward_service.api import (
    Rollout,
    ScoredRollout,
    ScoreRequest,
    ScoreResponse,
    ToolRequest,
    ToolResponse,
    encode_image,
)
from rft.codec import ImageDecodeError, decode_image
from rft.errors import short_repr, short_text
from rft.methods import Coefficients, method_named
from rft.tools import ToolError, run_tool


def request_pixels(request: ToolRequest) -> np.ndarray:
    """The request's image as a uint8 RGB array (a raw image was decoded and checked by validation)."""
    if request.image_raw is not None:
        return request.image_raw.pixels
    return decode_image(request.image_png or "")


def execute_tool(request: ToolRequest) -> ToolResponse:
    """Run the requested tool; the picture comes back in the request's encoding. A bad call (unknown tool,
    bad arguments, undecodable PNG) is an `ok=False` response naming the problem: for the policy it is a
    format penalty, for the service an ordinary answer."""
    start = time.perf_counter()
    try:
        image = request_pixels(request)
        output = run_tool(request.name, image, request.arguments, output_size=request.output_size)
    except (ToolError, ImageDecodeError) as error:
        return ToolResponse(
            ok=False,
            error=short_text(str(error).splitlines()[0]) if str(error) else type(error).__name__,
            error_type=type(error).__name__,
            seconds=time.perf_counter() - start,
        )
    encoded = encode_image(output, request.encoding)
    return ToolResponse(ok=True, **encoded, seconds=time.perf_counter() - start)


def coefficients_for(method: str, overrides: dict[str, Any]) -> Coefficients:
    """The method's coefficient object with `overrides` applied (rft.methods). Raises ValueError naming a
    bad key, or one whose value is not of its coefficient's kind (a number, an integer, a map of numbers)."""
    chosen = method_named(method)
    defaults = chosen.default_coefficients()
    for name, value in overrides.items():
        default = getattr(defaults, name, None)  # None: not a coefficient, which coefficients() says
        if default is not None and not _same_kind(value, default):
            raise ValueError(f"{name} must be like {short_repr(default)}, got {short_repr(value)}")
    return chosen.coefficients(overrides)


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, Mapping):
        return isinstance(value, Mapping) and all(_same_kind(v, 0.0) for v in value.values())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or not isinstance(default, int)


def score_rollout(method: str, rollout: Rollout, coefficients: Any, max_tool_calls: int) -> ScoredRollout:
    """One rollout's reward with every component. Pure: the same input always gives the same output."""
    scored = method_named(method).score(
        rollout.turns, rollout.label, rollout.completion_tokens or 0, coefficients, max_tool_calls
    )
    return ScoredRollout(
        id=rollout.id, total=scored.total, components=scored.components, format_errors=scored.format_errors
    )


def score_rollouts(request: ScoreRequest, rollouts: list[Rollout] | None = None) -> list[ScoredRollout]:
    coefficients = coefficients_for(request.method, request.coefficients)
    chosen = request.rollouts if rollouts is None else rollouts
    return [score_rollout(request.method, r, coefficients, request.max_tool_calls) for r in chosen]


def score_batch(request: ScoreRequest) -> ScoreResponse:
    """Score every rollout of the request in this process (the in-process mode)."""
    return ScoreResponse(request_id=request.request_id, method=request.method, scores=score_rollouts(request))

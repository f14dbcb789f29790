"""What a reward-service replica computes, as plain functions: the same code runs in Ray replicas and in the
in-process mode, so the service can only add transport, never change a score."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from reward_service.api import (
    ImageDecodeError,
    Rollout,
    ScoredRollout,
    ScoreRequest,
    ScoreResponse,
    ToolRequest,
    ToolResponse,
    decode_image,
    encode_image,
)
from rft.parsing.tar_fas import parse_episode
from rft.rewards.dt_grpo import DtGrpoCoefficients, dt_grpo_reward, st_grpo_reward
from rft.rewards.rft_fas import RftFasCoefficients, rft_fas_reward
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
            error=str(error).splitlines()[0] if str(error) else type(error).__name__,
            error_type=type(error).__name__,
            seconds=time.perf_counter() - start,
        )
    encoded = encode_image(output, request.encoding)
    return ToolResponse(ok=True, **encoded, seconds=time.perf_counter() - start)


def coefficients_for(
    method: str, overrides: dict[str, Any]
) -> DtGrpoCoefficients | RftFasCoefficients | None:
    """The method's coefficient object with `overrides` applied. Raises ValueError naming a bad key."""
    if method == "st_grpo":
        if overrides:
            raise ValueError("st_grpo has no coefficients (Eq. S15); send an empty coefficients object")
        return None
    base = DtGrpoCoefficients() if method == "dt_grpo" else RftFasCoefficients()
    known = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown coefficient(s) {unknown} for {method}; known: {sorted(known)}")
    if "tool_weights" in overrides and isinstance(base, DtGrpoCoefficients):
        overrides = {**overrides, "tool_weights": {**base.tool_weights, **overrides["tool_weights"]}}
    return dataclasses.replace(base, **overrides)


def _components(result: Any) -> dict[str, float]:
    return {name: float(value) for name, value in dataclasses.asdict(result).items() if name != "total"}


def score_rollout(method: str, rollout: Rollout, coefficients: Any, max_tool_calls: int) -> ScoredRollout:
    """One rollout's reward with every component. Pure: the same input always gives the same output."""
    if method == "rft_fas":
        result = rft_fas_reward(
            "".join(rollout.turns), rollout.label, rollout.completion_tokens or 0, coefficients
        )
        # R_format is 1 exactly when the response matches the format (Eq. 3): no second parse needed.
        errors = [] if result.format == 1.0 else ["response does not match the format"]
    else:
        episode = parse_episode(rollout.turns, max_tool_calls=max_tool_calls)
        if method == "dt_grpo":
            result = dt_grpo_reward(episode, rollout.label, coefficients)
        else:
            result = st_grpo_reward(episode, rollout.label)
        errors = list(episode.errors)
    return ScoredRollout(
        id=rollout.id, total=float(result.total), components=_components(result), format_errors=errors
    )


def score_rollouts(request: ScoreRequest, rollouts: list[Rollout] | None = None) -> list[ScoredRollout]:
    coefficients = coefficients_for(request.method, request.coefficients)
    chosen = request.rollouts if rollouts is None else rollouts
    return [score_rollout(request.method, r, coefficients, request.max_tool_calls) for r in chosen]


def score_batch(request: ScoreRequest) -> ScoreResponse:
    """Score every rollout of the request in this process (the in-process mode)."""
    return ScoreResponse(request_id=request.request_id, method=request.method, scores=score_rollouts(request))

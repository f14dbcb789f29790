"""The rollout server's wire format (JSON validated by pydantic on both sides; images as base64 PNG).

The sampling types a trainer sees (`Sampling`, `SampleResponse`, ...) are rft.rollout.sampling's; this module
adds the request bodies and the wire form of an episode."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from rft.codec import decode_pil, encode_png
from rft.rollout.episode import Episode, ToolCallRecord
from rft.rollout.sampling import Sampling, Strict

MAX_PROMPTS = 1024


class SampleRequest(Strict):
    """Single-turn sampling (paper 001): n completions for each image under the same messages."""

    messages: list[dict[str, Any]] = Field(..., min_length=1, description="Chat messages; one image part.")
    images: list[str] = Field(..., min_length=1, max_length=MAX_PROMPTS, description="Base64 PNG per prompt.")
    n: int = Field(..., ge=1, le=256)
    sampling: Sampling = Field(default_factory=Sampling)


class EpisodeRequest(Strict):
    """Paper 003 episodes: n per image."""

    images: list[str] = Field(..., min_length=1, max_length=MAX_PROMPTS)
    n: int = Field(..., ge=1, le=256)
    sampling: Sampling = Field(default_factory=Sampling)


class ToolCallOut(Strict):
    name: str | None
    arguments: dict[str, Any] | None
    ok: bool
    error: str | None
    seconds: float


class EpisodeOut(Strict):
    token_ids: list[int]
    logprobs: list[float]
    mask: list[int]
    images: list[str]
    turns: list[str]
    tool_calls: list[ToolCallOut]
    prompt_length: int
    stop_reason: str
    messages: list[dict[str, Any]]


class EpisodeResponse(Strict):
    groups: list[list[EpisodeOut]]
    weights_version: int


class AdapterRequest(Strict):
    name: str = Field(..., min_length=1, max_length=64)
    path: str = Field(..., min_length=1, description="Folder of a PEFT adapter readable by the server.")


def episode_out(episode: Episode) -> EpisodeOut:
    return EpisodeOut(
        token_ids=episode.token_ids,
        logprobs=episode.logprobs,
        mask=episode.mask,
        images=[encode_png(image) for image in episode.images],
        turns=episode.turns,
        tool_calls=[ToolCallOut(**vars(call)) for call in episode.tool_calls],
        prompt_length=episode.prompt_length,
        stop_reason=episode.stop_reason,
        messages=episode.messages,
    )


def episode_from_wire(data: EpisodeOut) -> Episode:
    return Episode(
        token_ids=data.token_ids,
        logprobs=data.logprobs,
        mask=data.mask,
        images=[decode_pil(image) for image in data.images],
        turns=data.turns,
        tool_calls=[ToolCallRecord(**call.model_dump()) for call in data.tool_calls],
        prompt_length=data.prompt_length,
        stop_reason=data.stop_reason,
        messages=data.messages,
    )

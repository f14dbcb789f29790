"""The rollout server's wire format (JSON validated by pydantic on both sides; images as base64 PNG)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from reward_service.api import decode_image, encode_png
from rollout_server.episodes import Episode
from rollout_server.sampling import Completion, SamplingSettings

MAX_PROMPTS = 1024


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sampling(Strict):
    max_tokens: int = Field(256, ge=1, le=32768, description="Tokens per model turn.")
    temperature: float = Field(1.0, ge=0.0, le=10.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, description="Per-request seed; None samples freshly.")
    adapter: str | None = Field(None, description="Name of a LoRA adapter loaded with /v1/adapters.")
    ignore_eos: bool = Field(False, description="Sample exactly max_tokens (for benchmarks).")

    def settings(self) -> SamplingSettings:
        return SamplingSettings(self.max_tokens, self.temperature, self.top_p, self.seed, self.ignore_eos)


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


class CompletionOut(Strict):
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str
    text: str


class SampleGroup(Strict):
    prompt_ids: list[int]
    completions: list[CompletionOut]


class SampleResponse(Strict):
    groups: list[SampleGroup]
    weights_version: int


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


def completion_out(completion: Completion, text: str) -> CompletionOut:
    return CompletionOut(
        token_ids=completion.token_ids,
        logprobs=completion.logprobs,
        finish_reason=completion.finish_reason,
        text=text,
    )


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
    from rollout_server.episodes import ToolCallRecord

    return Episode(
        token_ids=data.token_ids,
        logprobs=data.logprobs,
        mask=data.mask,
        images=[Image.fromarray(decode_image(image)) for image in data.images],
        turns=data.turns,
        tool_calls=[ToolCallRecord(**call.model_dump()) for call in data.tool_calls],
        prompt_length=data.prompt_length,
        stop_reason=data.stop_reason,
        messages=data.messages,
    )


def image_from_wire(data: str) -> Image.Image:
    return Image.fromarray(np.asarray(decode_image(data)))


def image_to_wire(image: Image.Image | np.ndarray) -> str:
    return encode_png(image)

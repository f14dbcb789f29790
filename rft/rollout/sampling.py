"""Sampling requests and single-turn replies, as a rollout source takes and returns them (pydantic models,
so that the rollout server validates them on its wire and an in-process source returns the same objects)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from rft.rollout.episode import Completion, SamplingSettings


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


def completion_out(completion: Completion, text: str) -> CompletionOut:
    return CompletionOut(
        token_ids=completion.token_ids,
        logprobs=completion.logprobs,
        finish_reason=completion.finish_reason,
        text=text,
    )

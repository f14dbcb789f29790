"""Sampling requests and single-turn replies, as a rollout source takes and returns them (pydantic models,
so that the rollout server validates them on its wire and an in-process source returns the same objects)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from rft.rollout.episode import Completion, SamplingSettings

# Seeds are offset per image, episode and turn modulo this (rollout_server.episodes), as vLLM takes them.
SEED_LIMIT = 2**31
MAX_TOKENS = 32768
MAX_ADAPTER_NAME = 64


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrictRequest(Strict):
    """A request body: no coercion (`true` is not 1, `"12"` is not 12, `1e30` is not an int), finite floats.
    A coerced value reached vLLM's engine process once and stopped it reading requests (issue #14)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class Sampling(StrictRequest):
    max_tokens: int = Field(256, ge=1, le=MAX_TOKENS, description="Tokens per model turn.")
    # vLLM's own range: SamplingParams refuses a temperature above 2.
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, lt=SEED_LIMIT, description="Per-request seed; None samples freshly.")
    adapter: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ADAPTER_NAME,
        description="Name of a LoRA adapter loaded with /v1/adapters.",
    )
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

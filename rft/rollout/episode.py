"""One sampled conversation (an episode) and the single-turn completion it generalises.

An episode holds *compact* token ids (rft.models.conversation): one placeholder per image. `mask[i]` is 1
where the model sampled token i and `logprobs[i]` its sampling log-probability (0 where the mask is 0);
`images[k]` belongs to the k-th placeholder. Where an episode stops is one of `STOP_REASONS`
(docs/ROLLOUT_SERVER.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from rft.models.conversation import ConversationTokenizer
from rft.prompts.episodes import Message, assistant_message

# "answer": an <answer> turn; "malformed": a turn neither tool call nor answer; "tool_limit": a call past
# max_tool_calls; "max_tokens": a turn cut by its token budget; "context": the context is full.
STOP_REASONS = ("answer", "malformed", "tool_limit", "max_tokens", "context")
# The stops where the model ran out of tokens rather than ending its turn (TRL's "truncated completion").
TRUNCATED_STOPS = frozenset({"max_tokens", "context"})


@dataclass(frozen=True)
class Completion:
    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str  # "stop" (end of turn), "length" (max_tokens) or "abort"


class CompletionLike(Protocol):
    """A `Completion`, or its wire form (`rft.rollout.sampling.CompletionOut`)."""

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: str


@dataclass(frozen=True)
class SamplingSettings:
    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    ignore_eos: bool = False  # benchmarks only: sample exactly max_tokens


@dataclass
class ToolCallRecord:
    name: str | None
    arguments: dict | None
    ok: bool
    error: str | None
    seconds: float


@dataclass
class Episode:
    """One sampled conversation (see the module docstring for the layout of its lists)."""

    token_ids: list[int]
    logprobs: list[float]
    mask: list[int]
    images: list[Image.Image]
    turns: list[str]
    tool_calls: list[ToolCallRecord]
    prompt_length: int
    stop_reason: str
    messages: list[Message] = field(default_factory=list)

    @property
    def completion_tokens(self) -> int:
        return int(sum(self.mask))

    @property
    def truncated(self) -> bool:
        return self.stop_reason in TRUNCATED_STOPS


def single_turn_episode(
    prompt_ids: Sequence[int],
    completion: CompletionLike,
    image: Image.Image,
    messages: list[Message],
    tokenizer: ConversationTokenizer,
) -> Episode:
    """A paper-001 sample as an episode with one model turn, so both papers share one training path. The
    turn's text is decoded as the rollout server decodes episode turns (its closing `<|im_end|>` dropped)."""
    ids = list(completion.token_ids)
    closed = bool(ids) and ids[-1] == tokenizer.end_of_turn_id
    text = tokenizer.decode(ids[:-1] if closed else ids)
    stop = {"stop": "answer", "length": "max_tokens"}.get(completion.finish_reason, completion.finish_reason)
    return Episode(
        token_ids=[*prompt_ids, *ids],
        logprobs=[0.0] * len(prompt_ids) + list(completion.logprobs),
        mask=[0] * len(prompt_ids) + [1] * len(ids),
        images=[image],
        turns=[text],
        tool_calls=[],
        prompt_length=len(prompt_ids),
        stop_reason=stop,
        messages=[*messages, assistant_message(text)],
    )


def model_token_ids(episode: Episode) -> list[int]:
    """The tokens the model sampled, in order (len is paper 001's len(o_i), Eq. 5)."""
    return [token for token, sampled in zip(episode.token_ids, episode.mask, strict=True) if sampled]


def without_sampled_vision_tokens(
    episode: Episode, tokenizer: ConversationTokenizer
) -> tuple[list[int], bool]:
    """The episode's ids with every image token the model sampled replaced by the pad token, and whether
    there was one. Such a token would be an image slot without an image, which the forward pass refuses;
    the rollout server bans them, so this only guards against other samplers."""
    ids = list(episode.token_ids)
    found = False
    for i, (token, sampled) in enumerate(zip(ids, episode.mask, strict=True)):
        if sampled and token in tokenizer.vision_ids:
            ids[i] = tokenizer.tokenizer.pad_token_id
            found = True
    return ids, found

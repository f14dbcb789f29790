"""Paper 003's multi-turn episodes with real tool calls, and single-turn sampling, over any `Sampler`.

The same code runs behind the HTTP server and in-process (evaluation, single machine). An episode
(Appendix B.1): the model answers the first-round query without tools (the fast answer); the scripted
re-examine turn with the format declaration follows; then each model turn either calls one tool, which is
executed for real on the dataset image and whose picture comes back as the next observation, or answers.

Where an episode stops (docs/ROLLOUT_SERVER.md): at the first answer; at a turn that is neither a tool call
nor an answer; at a tool call beyond `max_tool_calls` (not executed, as rft.parsing counts it); when a turn
is cut by `max_tokens`; or when the context is full. An invalid tool call within the limit is answered
with the error as text, so the model sees why and the episode goes on; it still counts against the limit.
A call to a tool outside the run's tool set (the tools the tokenizer's prompt lists, run.tools) is an
invalid call like one to an unknown tool: not executed, answered with the error.
The error may quote the policy's call, `<|im_start|>` or `<|image_pad|>` included: like every scripted turn it
is tokenised by `ConversationTokenizer`, which keeps such text plain (docs/ROLLOUT_SERVER.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from rft.models.conversation import ConversationTokenizer
from rft.parsing.tar_fas import DEFAULT_MAX_TOOL_CALLS, parse_reasoning_turn
from rft.prompts.episodes import (
    Message,
    assistant_message,
    first_turn_messages,
    reexamine_message,
    tool_error_message,
    tool_result_message,
)
from rft.rollout.episode import Completion, Episode, SamplingSettings, ToolCallRecord
from rft.rollout.protocols import ToolRunner
from rft.tools.toolsets import unavailable_tool_error
from rollout_server.sampling import Sampler


@dataclass
class _Conversation:
    ids: list[int]
    logprobs: list[float]
    mask: list[int]
    images: list[Image.Image]
    messages: list[Message]
    turns: list[str] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)

    def add_scripted(self, ids: Sequence[int]) -> None:
        self.ids += ids
        self.logprobs += [0.0] * len(ids)
        self.mask += [0] * len(ids)


class EpisodeRunner:
    def __init__(
        self,
        sampler: Sampler,
        tokenizer: ConversationTokenizer,
        tools: ToolRunner,
        *,
        max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
        max_model_len: int = 4096,
        image_size: int = 224,
    ) -> None:
        self.sampler = sampler
        self.tokenizer = tokenizer
        self.tools = tools
        self.max_tool_calls = max_tool_calls
        self.max_model_len = max_model_len
        self.image_size = image_size
        self._image_tokens: dict[tuple[int, int], int] = {}

    async def sample(
        self,
        messages: list[Message],
        images: Sequence[Image.Image],
        *,
        n: int,
        settings: SamplingSettings,
        adapter: str | None = None,
    ) -> tuple[list[int], list[Completion]]:
        """Single-turn sampling (paper 001): n completions of `messages`; returns the prompt ids too."""
        # Tokenising a long prompt, or measuring an image of a new size, takes a while: off the event loop.
        prompt = await asyncio.to_thread(self.tokenizer.prompt_ids, messages)
        budget = await asyncio.to_thread(self._room, prompt, images)
        if budget <= 0:
            raise ValueError(f"the prompt fills the context of {self.max_model_len} tokens")
        limited = _with_max_tokens(settings, budget)
        return prompt, await self.sampler.sample(prompt, images, n=n, settings=limited, adapter=adapter)

    async def sample_each(
        self,
        messages: list[Message],
        images: Sequence[Image.Image],
        *,
        n: int,
        settings: SamplingSettings,
        adapter: str | None = None,
    ) -> list[tuple[list[int], list[Completion]]]:
        """`sample` for each image under the same messages, all in flight at once."""
        return list(
            await asyncio.gather(
                *(
                    self.sample(
                        messages,
                        [image],
                        n=n,
                        settings=_offset_seed(settings, 1_000_003 * i),
                        adapter=adapter,
                    )
                    for i, image in enumerate(images)
                )
            )
        )

    async def episodes_each(
        self, images: Sequence[Image.Image], *, n: int, settings: SamplingSettings, adapter: str | None = None
    ) -> list[list[Episode]]:
        """`episodes` for each image, all in flight at once (vLLM batches their turns)."""
        return list(
            await asyncio.gather(
                *(
                    self.episodes(image, n=n, settings=_offset_seed(settings, 1_000_003 * i), adapter=adapter)
                    for i, image in enumerate(images)
                )
            )
        )

    async def episodes(
        self,
        image: Image.Image,
        *,
        n: int,
        settings: SamplingSettings,
        adapter: str | None = None,
    ) -> list[Episode]:
        """n episodes of paper 003 on one image; the n fast answers come from one request (shared prefix)."""
        image = image.convert("RGB")
        messages = first_turn_messages()
        prompt, firsts = await self.sample(messages, [image], n=n, settings=settings, adapter=adapter)
        runs = [
            self._continue(
                _Conversation(list(prompt), [0.0] * len(prompt), [0] * len(prompt), [image], list(messages)),
                first,
                _offset_seed(settings, 7_919 * (1 + i)),
                adapter,
                prompt_length=len(prompt),
            )
            for i, first in enumerate(firsts)
        ]
        return list(await asyncio.gather(*runs))

    async def _continue(
        self,
        conv: _Conversation,
        first: Completion,
        settings: SamplingSettings,
        adapter: str | None,
        prompt_length: int,
    ) -> Episode:
        completion = first
        attempts = 0
        while True:
            text = self._add_model_turn(conv, completion)
            if completion.finish_reason != "stop":
                return self._finish(conv, prompt_length, "max_tokens")
            if len(conv.turns) == 1:
                follow_up = [reexamine_message()]
            else:
                turn = parse_reasoning_turn(text)
                if turn.kind == "answer":
                    return self._finish(conv, prompt_length, "answer")
                if turn.kind != "tool_call" or turn.tool_call is None:
                    return self._finish(conv, prompt_length, "malformed")
                attempts += 1
                if attempts > self.max_tool_calls:
                    return self._finish(conv, prompt_length, "tool_limit")
                follow_up = [await self._tool_turn(conv, turn.tool_call)]
            conv.add_scripted(self.tokenizer.continuation_ids(conv.messages, follow_up))
            conv.messages += follow_up
            budget = self._room(conv.ids, conv.images)
            if budget <= 0:
                return self._finish(conv, prompt_length, "context")
            turn_settings = _offset_seed(_with_max_tokens(settings, budget), 104_729 * len(conv.turns))
            (completion,) = await self.sampler.sample(
                conv.ids, conv.images, n=1, settings=turn_settings, adapter=adapter
            )

    def _add_model_turn(self, conv: _Conversation, completion: Completion) -> str:
        ids = list(completion.token_ids)
        closed = bool(ids) and ids[-1] == self.tokenizer.end_of_turn_id
        text = self.tokenizer.decode(ids[:-1] if closed else ids)
        conv.ids += ids
        conv.logprobs += list(completion.logprobs)
        conv.mask += [1] * len(ids)
        if not closed:  # a cut turn is closed by the server, not by the model
            conv.add_scripted([self.tokenizer.end_of_turn_id])
        conv.turns.append(text)
        conv.messages.append(assistant_message(text))
        return text

    async def _tool_turn(self, conv: _Conversation, call: Any) -> Message:
        if not call.valid:
            conv.tool_calls.append(ToolCallRecord(call.name, None, False, call.error, 0.0))
            return tool_error_message(call.error)
        if call.name not in self.tokenizer.tool_names:  # outside the run's tool set: as an unknown tool
            error = str(unavailable_tool_error(call.name, self.tokenizer.tool_names))
            conv.tool_calls.append(ToolCallRecord(call.name, None, False, error, 0.0))
            return tool_error_message(error)
        arguments = call.arguments.model_dump(mode="json")
        start = time.perf_counter()
        result = await asyncio.to_thread(
            self.tools.run_tool, call.name, conv.images[0], arguments, self.image_size
        )
        seconds = time.perf_counter() - start
        conv.tool_calls.append(ToolCallRecord(call.name, arguments, result.ok, result.error, seconds))
        if not result.ok:
            return tool_error_message(result.error)
        conv.images.append(Image.fromarray(np.asarray(result.image, dtype=np.uint8)))
        return tool_result_message()

    def _room(self, ids: Sequence[int], images: Sequence[Image.Image]) -> int:
        """Tokens left in the context after `ids` with their images expanded as the model sees them."""
        expanded = len(ids) + sum(self._image_token_count(image) for image in images)
        return self.max_model_len - expanded

    def _image_token_count(self, image: Image.Image) -> int:
        """Extra tokens an image adds when its placeholder is expanded (cached per image size)."""
        key = image.size
        if key not in self._image_tokens:
            expanded = self.tokenizer.expand_images(self.tokenizer.placeholder_ids, [image])
            self._image_tokens[key] = len(expanded.input_ids) - len(self.tokenizer.placeholder_ids)
        return self._image_tokens[key]

    def _finish(self, conv: _Conversation, prompt_length: int, stop_reason: str) -> Episode:
        return Episode(
            token_ids=conv.ids,
            logprobs=conv.logprobs,
            mask=conv.mask,
            images=conv.images,
            turns=conv.turns,
            tool_calls=conv.tool_calls,
            prompt_length=prompt_length,
            stop_reason=stop_reason,
            messages=conv.messages,
        )


def _offset_seed(settings: SamplingSettings, offset: int) -> SamplingSettings:
    """A seeded request's seed for one image, episode or turn of it: reproducible, yet two episodes that
    reach the same context do not repeat each other's next turn, and two images do not share a stream."""
    if settings.seed is None or offset == 0:
        return settings
    return dataclasses.replace(settings, seed=(settings.seed + offset) % (2**31))


def _with_max_tokens(settings: SamplingSettings, budget: int) -> SamplingSettings:
    return dataclasses.replace(settings, max_tokens=min(settings.max_tokens, budget))

"""Token ids of a multi-turn conversation, built the same way by the rollout server and the trainer.

A conversation is kept as *compact* token ids: each image is its chat-template placeholder, unexpanded
(`<|vision_start|><|image_pad|><|vision_end|>` for Qwen2.5-VL, `<IMG_CONTEXT>` for InternVL3). vLLM
expands the placeholders itself when it receives token ids with images, and the trainer expands them with
`expand_images` using the model's own processor, so both sides see the same sequence.

The model's tokens are never re-tokenised: the server appends the sampled ids as they are, and only the
scripted text between two model turns (the end of a turn, a user or tool turn, the next generation prompt)
is rendered with the chat template and tokenised. That text always starts right after the model's
`<|im_end|>`, a special token, so tokenising it on its own gives the ids the whole text would have.

Only the template's own markers become control tokens (rft.models.plain_text): text in the messages (a
user's query, a tool error echoing the policy's call, a stored conversation) is tokenised as plain text even
where it spells `<|im_start|>` or `<|image_pad|>`. `expand_images` refuses ids that hold an image token
outside an image placeholder, so such ids stop with a clear error before any model sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers.utils.chat_template_utils import render_jinja_template

from rft.models.plain_text import Encoded, plain_text_tokenizer
from rft.prompts.chat_template import IMAGE_PLACEHOLDER
from rft.prompts.episodes import Message
from rft.tools import tool_schemas

END_OF_TURN = "<|im_end|>"
# The tokens that delimit or stand for image and video features, of both architectures. Only the chat template
# and the processor may place them: one sampled by the policy would be an image slot without an image, which
# the model's forward refuses, so the sampler bans them and the trainer neutralises any that still come; text
# that spells one stays text (rft.models.plain_text).
VISION_TOKENS = (
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<video>",
)


def vision_token_ids(tokenizer: Any) -> list[int]:
    """The ids of the `VISION_TOKENS` that `tokenizer` has."""
    vocab = tokenizer.get_vocab()
    return sorted(vocab[token] for token in VISION_TOKENS if token in vocab)


class ConversationError(ValueError):
    """The messages cannot be continued as asked (e.g. the last turn is not the model's)."""


@dataclass(frozen=True)
class ExpandedConversation:
    """Ids with every image placeholder expanded to the model's patch tokens, and the model inputs of the
    images. `origin[j]` is the index of token j in the compact ids, or -1 for a token an image added.
    `token_inputs` are the processor's other per-token inputs (Qwen2.5-VL's `mm_token_type_ids`, which its
    rotary position code reads), laid out on the expanded ids."""

    input_ids: torch.Tensor
    origin: torch.Tensor
    image_inputs: dict[str, torch.Tensor]
    token_inputs: dict[str, torch.Tensor]

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments of the model's forward pass for this one sequence (batch of 1)."""
        return {
            "input_ids": self.input_ids[None],
            **{k: v[None] for k, v in self.token_inputs.items()},
            **self.image_inputs,
        }

    def spread(self, values: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """Per-token `values` of the compact ids laid out on the expanded ids (`fill` on image tokens)."""
        out = torch.full(self.origin.shape, fill, dtype=values.dtype)
        kept = self.origin >= 0
        out[kept] = values[self.origin[kept]]
        return out


def schema_tool_name(schema: object) -> str | None:
    """The function name of an OpenAI-style tool schema; None for anything else (a client of the chat route
    may send any JSON as its tools: the template renders it, and nothing of it becomes a runnable tool)."""
    function = schema.get("function") if isinstance(schema, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


class ConversationTokenizer:
    """Renders the project's chat template with the tool schemas and tokenises the pieces of an episode."""

    def __init__(self, processor: Any, arch: str, tools: list[dict] | None = None) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.arch = arch
        self.tools = tool_schemas() if tools is None else tools
        # The tools the prompt offers are the ones an episode may run (rollout_server.episodes).
        self.tool_names = tuple(name for name in map(schema_tool_name, self.tools) if name is not None)
        self.end_of_turn_id = self.tokenizer.convert_tokens_to_ids(END_OF_TURN)
        self.placeholder_ids = self.encode(IMAGE_PLACEHOLDER[arch])
        self.vision_ids = frozenset(vision_token_ids(self.tokenizer))
        self.plain = plain_text_tokenizer(self.tokenizer, VISION_TOKENS)

    def encode(self, text: str) -> list[int]:
        """`text` with its control strings as control tokens: for the template's markers and for text the
        model wrote (re-tokenised as it was sampled), never for text from messages."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def render(self, messages: list[Message], add_generation_prompt: bool) -> str:
        return self._render(messages, self.tools, add_generation_prompt)[0]

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """The compact ids of `messages` followed by the assistant generation prompt."""
        hidden = self.plain.hide((messages, self.tools))
        rendered, _ = self._render(*hidden.value, add_generation_prompt=True)
        return self.plain.encode(rendered, hidden).ids

    def continuation_ids(self, messages: list[Message], new_messages: list[Message]) -> list[int]:
        """The ids that follow the model's `<|im_end|>` closing the last (assistant) message of `messages`:
        the rest of the template, `new_messages`, then the next generation prompt."""
        if not messages or messages[-1]["role"] != "assistant":
            raise ConversationError("continuation_ids needs a conversation ending with the model's turn")
        hidden = self.plain.hide((messages, new_messages, self.tools))
        shown, added, tools = hidden.value
        before, _ = self._render(shown, tools, add_generation_prompt=False)
        after, _ = self._render(shown + added, tools, add_generation_prompt=True)
        closing = END_OF_TURN + "\n"
        if not before.endswith(closing) or not after.startswith(before):
            raise ConversationError("the chat template does not render turns as a growing prefix")
        return self.plain.encode("\n" + after[len(before) :], hidden).ids

    def conversation_ids(self, messages: list[Message]) -> tuple[list[int], list[int]]:
        """The compact ids of a whole stored conversation (no generation prompt) and per token 1 where the
        assistant wrote it: the template's `{% generation %}` spans (its text, tool calls and `<|im_end|>`)."""
        hidden = self.plain.hide((messages, self.tools))
        rendered, spans = self._render(*hidden.value, add_generation_prompt=False, generation_spans=True)
        encoded = self.plain.encode(rendered, hidden)
        return encoded.ids, assistant_mask(encoded, spans)

    def _render(
        self,
        messages: list[Message],
        tools: list[dict],
        add_generation_prompt: bool,
        generation_spans: bool = False,
    ) -> tuple[str, list[tuple[int, int]]]:
        """The template's text (as the processor's `apply_chat_template` renders it) and, when asked, the
        character spans of its generation tags."""
        rendered, spans = render_jinja_template(
            conversations=[messages],
            tools=tools,
            chat_template=self.processor.chat_template,
            return_assistant_tokens_mask=generation_spans,
            add_generation_prompt=add_generation_prompt,
            **self.tokenizer.special_tokens_map,
        )
        return rendered[0], (spans[0] if generation_spans else [])

    def expand_images(self, ids: Sequence[int], images: Sequence[Image.Image]) -> ExpandedConversation:
        """Expand each image placeholder of the compact `ids` as the processor would, in order."""
        compact = list(ids)
        starts = find_subsequences(compact, self.placeholder_ids)
        if len(starts) != len(images):
            raise ConversationError(
                f"the ids hold {len(starts)} image placeholders but {len(images)} images were given"
            )
        self._refuse_stray_image_tokens(compact, starts)
        flat: list[int] = []
        origin: list[int] = []
        token_extras: dict[str, list[int]] = {}
        per_image: list[dict[str, torch.Tensor]] = []
        cursor = 0
        for start, image in zip(starts, images, strict=True):
            flat += compact[cursor:start]
            origin += range(cursor, start)
            for values in token_extras.values():
                values += [0] * (start - cursor)
            expanded, extras, inputs = self._expand_one(image)
            for key, values in extras.items():
                token_extras.setdefault(key, [0] * len(flat)).extend(values)
            flat += expanded
            origin += [-1] * len(expanded)
            per_image.append(inputs)
            cursor = start + len(self.placeholder_ids)
        flat += compact[cursor:]
        origin += range(cursor, len(compact))
        for values in token_extras.values():
            values += [0] * (len(flat) - len(values))
        return ExpandedConversation(
            input_ids=torch.tensor(flat, dtype=torch.long),
            origin=torch.tensor(origin, dtype=torch.long),
            image_inputs=concat_image_inputs(per_image),
            token_inputs={
                key: torch.tensor(values, dtype=torch.long) for key, values in token_extras.items()
            },
        )

    def _refuse_stray_image_tokens(self, ids: list[int], starts: list[int]) -> None:
        """An image token outside a placeholder is an image slot without an image: the model's forward would
        fail deep inside (Qwen2.5-VL: "Image features and image tokens do not match")."""
        width = len(self.placeholder_ids)
        inside = {i for start in starts for i in range(start, start + width)}
        stray = [i for i, token in enumerate(ids) if token in self.vision_ids and i not in inside]
        if stray:
            raise ConversationError(
                f"the ids hold {len(stray)} image token(s) outside an image placeholder, the first "
                f"{self.decode([ids[stray[0]]])!r} at position {stray[0]}: text was tokenised with its control "
                "strings as control tokens (rft.models.plain_text keeps text plain)"
            )

    def _expand_one(
        self, image: Image.Image
    ) -> tuple[list[int], dict[str, list[int]], dict[str, torch.Tensor]]:
        """The placeholder's expanded ids, the processor's other per-token inputs and the image inputs."""
        batch = self.processor(
            text=[IMAGE_PLACEHOLDER[self.arch]], images=[image.convert("RGB")], return_tensors="pt"
        )
        expanded = batch["input_ids"][0].tolist()
        per_token = {
            key: value[0].tolist()
            for key, value in batch.items()
            if key not in ("input_ids", "attention_mask")
            and value.dim() == 2
            and value.shape[1] == len(expanded)
            and value.shape[0] == 1
        }
        inputs = {
            key: value
            for key, value in batch.items()
            if key not in ("input_ids", "attention_mask") and key not in per_token
        }
        return expanded, per_token, inputs


def assistant_mask(encoded: Encoded, spans: Sequence[tuple[int, int]]) -> list[int]:
    """1 for each token overlapping a generation span, as transformers' `return_assistant_tokens_mask`."""
    return [int(any(start < end and stop > begin for begin, end in spans)) for start, stop in encoded.offsets]


def find_subsequences(ids: Sequence[int], pattern: Sequence[int]) -> list[int]:
    """Start indices of the non-overlapping occurrences of `pattern` in `ids`."""
    starts: list[int] = []
    width = len(pattern)
    i = 0
    while i + width <= len(ids):
        if list(ids[i : i + width]) == list(pattern):
            starts.append(i)
            i += width
        else:
            i += 1
    return starts


def concat_image_inputs(per_image: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Qwen2.5-VL's patches/grids and InternVL's pixel tiles all stack along dim 0."""
    if not per_image:
        return {}
    return {key: torch.cat([inputs[key] for inputs in per_image], dim=0) for key in per_image[0]}

"""The subset of OpenAI's chat-completions API a dataset-construction teacher needs: text and
`image_url` parts (as `data:` URLs), optional `tools`, `max_tokens`, `temperature`, `top_p`, `seed`.

The fields it reads are typed strictly and bounded (rollout_server.api's limits); fields it does not read
(`model`, `tool_choice`, ...) are ignored, as OpenAI-compatible servers do."""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from rft.codec import MAX_IMAGE_BYTES, ImageDecodeError, base64_length
from rft.prompts.episodes import IMAGE_PART, Message, text_part
from rft.rollout.episode import SamplingSettings
from rft.rollout.sampling import MAX_TOKENS, SEED_LIMIT
from rollout_server.api import (
    MAX_CHAT_IMAGES,
    MAX_MESSAGES,
    MAX_PARTS,
    Text,
    check_prompt_chars,
    decode_images,
)

MAX_TOOLS = 64
DEFAULT_MAX_TOKENS = 512
DataUrl = Annotated[str, Field(max_length=base64_length(MAX_IMAGE_BYTES) + 64)]


class ChatModel(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)


class ChatText(ChatModel):
    type: Literal["text"]
    text: Text


class ImageUrl(ChatModel):
    url: DataUrl


class ChatImage(ChatModel):
    type: Literal["image_url"]
    image_url: ImageUrl | DataUrl

    @property
    def url(self) -> str:
        return self.image_url.url if isinstance(self.image_url, ImageUrl) else self.image_url


class ChatMessage(ChatModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: Text | Annotated[list[ChatText | ChatImage], Field(max_length=MAX_PARTS)] | None = None

    def parts(self) -> list[ChatText | ChatImage]:
        return self.content if isinstance(self.content, list) else []

    def text_chars(self) -> int:
        if isinstance(self.content, str):
            return len(self.content)
        return sum(len(part.text) for part in self.parts() if isinstance(part, ChatText))


class ChatRequest(ChatModel):
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_MESSAGES)
    tools: list[dict[str, Any]] | None = Field(None, max_length=MAX_TOOLS)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, lt=SEED_LIMIT)
    # What this subset cannot do is refused rather than ignored.
    n: Literal[1] | None = None
    stream: Literal[False] | None = None

    @field_validator("messages")
    @classmethod
    def _bounded(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        images = sum(isinstance(part, ChatImage) for message in messages for part in message.parts())
        if images > MAX_CHAT_IMAGES:
            raise ValueError(f"the messages hold {images} images; the limit is {MAX_CHAT_IMAGES}")
        check_prompt_chars(sum(message.text_chars() for message in messages))
        return messages

    @field_validator("tools")
    @classmethod
    def _bounded_tools(cls, tools: list[dict] | None, info: ValidationInfo) -> list[dict] | None:
        messages = info.data.get("messages", [])
        check_prompt_chars(sum(m.text_chars() for m in messages) + len(json.dumps(tools or [])))
        return tools

    def settings(self) -> SamplingSettings:
        return SamplingSettings(
            max_tokens=self.max_tokens or self.max_completion_tokens or DEFAULT_MAX_TOKENS,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            seed=self.seed,
        )


def prompt_inputs(request: ChatRequest) -> tuple[list[Message], list[Image.Image]]:
    """The messages as the chat template takes them (`{"type": "image"}` where an image was) and their
    images, decoded (rollout_server.api.decode_images). Blocking: the route runs it in a thread."""
    messages: list[Message] = []
    images: list[tuple[str, str]] = []
    for i, message in enumerate(request.messages):
        content: str | list[dict] = message.content if isinstance(message.content, str) else ""
        if isinstance(message.content, list):
            content = []
            for j, part in enumerate(message.content):
                if isinstance(part, ChatText):
                    content.append(text_part(part.text))
                else:
                    field = f"messages[{i}].content[{j}].image_url"
                    images.append((field, _base64_of(field, part.url)))
                    content.append(IMAGE_PART)
        messages.append({"role": message.role, "content": content})
    return messages, decode_images(images)


def _base64_of(field: str, url: str) -> str:
    if not url.startswith("data:image/") or ";base64," not in url:
        raise ImageDecodeError(
            f"{field}: not a data:image/...;base64, URL (the server reads no remote files)"
        )
    return url.split(";base64,", 1)[1]


def response(text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "rollout_server",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }

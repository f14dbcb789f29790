"""The subset of OpenAI's chat-completions API a dataset-construction teacher needs: text and
`image_url` parts (as `data:` URLs), optional `tools`, `max_tokens`, `temperature`, `top_p`, `seed`."""

from __future__ import annotations

import base64
import io
import time
import uuid
from typing import Any

from PIL import Image

from rft.rollout.episode import SamplingSettings

ROLES = {"system", "user", "assistant", "tool"}


def _image_from_url(url: str) -> Image.Image:
    if not url.startswith("data:image/") or ";base64," not in url:
        raise ValueError("image_url must be a data:image/...;base64, URL (the server reads no remote files)")
    raw = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
    with Image.open(io.BytesIO(raw)) as image:
        return image.convert("RGB")


def _content(content: Any, images: list[Image.Image]) -> str | list[dict]:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise ValueError("message content must be a string or a list of parts")
    parts: list[dict] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            url = (
                part["image_url"]["url"] if isinstance(part.get("image_url"), dict) else part.get("image_url")
            )
            images.append(_image_from_url(str(url)))
            parts.append({"type": "image"})
        else:
            raise ValueError(f"unsupported content part type {kind!r}")
    return parts


def parse_request(payload: Any) -> tuple[list[dict], list[Image.Image], list[dict] | None, SamplingSettings]:
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        raise ValueError("the body needs a 'messages' list")
    images: list[Image.Image] = []
    messages = []
    for message in payload["messages"]:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ValueError(f"each message needs a role among {sorted(ROLES)}")
        messages.append({"role": message["role"], "content": _content(message.get("content"), images)})
    tools = payload.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise ValueError("'tools' must be a list")
    settings = SamplingSettings(
        max_tokens=int(payload.get("max_tokens") or payload.get("max_completion_tokens") or 512),
        temperature=float(payload.get("temperature", 1.0)),
        top_p=float(payload.get("top_p", 1.0)),
        seed=payload.get("seed"),
    )
    return messages, images, tools, settings


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

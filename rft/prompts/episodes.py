"""The messages of a TAR-FAS (paper 003) episode, shared by the rollout server, the trainers and the
dataset-construction pipeline, so that every part renders the same conversation with the same template.

An episode (Appendix B.1) is:

    system   SYSTEM_PROMPT (the chat template appends the tool schemas)
    user     [image] FIRST_ROUND_QUERY                       -> assistant: fast answer "<CLS><reason>..</reason>"
    user     TOOL_GUIDANCE + FORMAT_DECLARATION              -> assistant: "<think>..</think><tool_call>{..}</tool_call>"
    tool     [tool output image] (+ optional guidance text)  -> assistant: ... until "<answer><CLS></answer>"

Messages use the Hugging Face chat format. Images never sit inside a message: a message holds an
`{"type": "image"}` placeholder and the images travel alongside, in the order their placeholders appear.
Stored conversations (stage-1 and stage-2 SFT data, rollout records) keep `messages` as a JSON string
(`messages_to_json`) because the content of a turn is either a string or a list of parts.
"""

from __future__ import annotations

import json
from typing import Any

from rft.prompts import tar_fas

Message = dict[str, Any]

IMAGE_PART: dict[str, str] = {"type": "image"}


def text_part(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def first_turn_messages(system_prompt: str = tar_fas.SYSTEM_PROMPT) -> list[Message]:
    """System prompt, then the image and the first-round query (Appendix B.1)."""
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": [IMAGE_PART, text_part(tar_fas.FIRST_ROUND_QUERY)]},
    ]


def reexamine_message() -> Message:
    """The scripted second user turn: tool guidance and the format declaration (Appendix B.1)."""
    return {"role": "user", "content": tar_fas.TOOL_GUIDANCE + " " + tar_fas.FORMAT_DECLARATION}


def assistant_message(text: str) -> Message:
    """An assistant turn kept as the exact text the model produced (tool calls included), so that the
    template renders it back to the same tokens."""
    return {"role": "assistant", "content": text}


def tool_result_message(guidance: str | None = None) -> Message:
    """A tool's output: its image, and for annotation the expert's guidance sentence (Eq. 5)."""
    content: list[dict[str, str]] = [IMAGE_PART]
    if guidance:
        content.append(text_part(guidance))
    return {"role": "tool", "content": content}


def tool_error_message(error: str) -> Message:
    """A tool call that could not run: the model sees why, as text, and no image."""
    return {"role": "tool", "content": [text_part(f"Error: {error}")]}


def count_images(messages: list[Message]) -> int:
    """How many image placeholders the messages hold (must equal the number of images sent with them)."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            total += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "image")
    return total


def messages_to_json(messages: list[Message]) -> str:
    return json.dumps(messages, ensure_ascii=False)


def messages_from_json(text: str) -> list[Message]:
    messages = json.loads(text)
    if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
        raise ValueError("messages must be a JSON list of objects with a 'role'")
    return messages

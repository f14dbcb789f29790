"""Stored conversations: the SFT data of paper 003's stages 1 and 2 and paper 002's captions.

One row per conversation. `messages` is the chat (rft.prompts.episodes, as a JSON string) and `images` the
images its `{"type": "image"}` placeholders stand for, in order: the dataset image first, then each tool
output. `kind` says which stage the row feeds; `source` says who wrote it (`teacher:<model>` or
`templated`), so templated text is never mistaken for a teacher's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import datasets
from PIL import Image

from rft.prompts.episodes import Message, count_images, messages_from_json, messages_to_json

ConversationKind = Literal["knowledge_transfer", "tool_trajectory", "caption_vanilla", "caption_reasoning"]

CONVERSATION_FEATURES = datasets.Features(
    {
        "sample_id": datasets.Value("string"),
        "label": datasets.ClassLabel(names=["live", "spoof"]),
        "spoof_type": datasets.Value("string"),
        "domain": datasets.Value("string"),
        "kind": datasets.Value("string"),
        "source": datasets.Value("string"),
        "messages": datasets.Value("string"),
        "images": datasets.Sequence(datasets.Image()),
    }
)


@dataclass
class Conversation:
    sample_id: str
    label: Literal["live", "spoof"]
    spoof_type: str
    domain: str
    kind: ConversationKind
    source: str
    messages: list[Message]
    images: list[Image.Image] = field(default_factory=list)

    def __post_init__(self) -> None:
        placeholders = count_images(self.messages)
        if placeholders != len(self.images):
            raise ValueError(
                f"conversation '{self.sample_id}' has {placeholders} image placeholders "
                f"but {len(self.images)} images"
            )


def conversations_to_dataset(conversations: Iterable[Conversation]) -> datasets.Dataset:
    rows = {name: [] for name in CONVERSATION_FEATURES}
    for conv in conversations:
        rows["sample_id"].append(conv.sample_id)
        rows["label"].append(conv.label)
        rows["spoof_type"].append(conv.spoof_type)
        rows["domain"].append(conv.domain)
        rows["kind"].append(conv.kind)
        rows["source"].append(conv.source)
        rows["messages"].append(messages_to_json(conv.messages))
        rows["images"].append([image.convert("RGB") for image in conv.images])
    return datasets.Dataset.from_dict(rows, features=CONVERSATION_FEATURES)


def conversation_from_row(row: dict) -> Conversation:
    """A dataset row back as a `Conversation` (the label may be stored as its class index)."""
    label = row["label"]
    if isinstance(label, int):
        label = CONVERSATION_FEATURES["label"].int2str(label)
    return Conversation(
        sample_id=row["sample_id"],
        label=label,
        spoof_type=row["spoof_type"],
        domain=row["domain"],
        kind=row["kind"],
        source=row["source"],
        messages=messages_from_json(row["messages"]),
        images=list(row["images"]),
    )

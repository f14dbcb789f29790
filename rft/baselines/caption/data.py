"""Paper 002's training data: stored caption conversations (`rft annotate` tasks caption_vanilla and
caption_reasoning, rft.data.conversations) in one of three settings, and the batches of the dual objective.

- vanilla: every image with its vanilla caption (Figure 1's style);
- reasoning: every image with its six-stage reasoning caption (Figure 3);
- mix ("vanilla+reasoning"): as many samples as the other two; a seeded half of the images keep their
  reasoning caption, the other half their vanilla one (paper 002: "half of the captions in the
  vanilla+reasoning set are replaced with reasoning-augmented prompts").
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import ProcessorMixin

from rft.data.conversations import CONVERSATION_FEATURES
from rft.trainers.sft_data import MultiTurnSFTCollator, SFTDataError, check_columns, check_image_counts

KINDS = {"vanilla": "caption_vanilla", "reasoning": "caption_reasoning"}


class CaptionDataError(SFTDataError):
    """Unusable caption data, in one line with the fix."""


def load_caption_dataset(
    data_dir: Path | Sequence[Path] | None, captions: str, seed: int = 0
) -> datasets.Dataset:
    """The training conversations of the setting `captions` (vanilla / reasoning / mix) from an
    `rft annotate` output folder (its caption_vanilla/ and caption_reasoning/ datasets), or several (one per
    source dataset, concatenated), checked before any model is loaded."""
    if data_dir is None:
        raise CaptionDataError("caption.data_dir is not set; point it at an `rft annotate` output folder")
    if not isinstance(data_dir, str | Path):
        columns = list(CONVERSATION_FEATURES)
        parts = [load_caption_dataset(folder, captions, seed) for folder in data_dir]
        if not parts:
            raise CaptionDataError("caption.data_dir is an empty list; give at least one annotation folder")
        return datasets.concatenate_datasets(
            [p.select_columns(columns).cast(CONVERSATION_FEATURES) for p in parts]
        )
    if captions == "mix":
        return mixed_captions(_kind(data_dir, "vanilla"), _kind(data_dir, "reasoning"), seed)
    if captions not in KINDS:
        raise CaptionDataError(f"caption.captions {captions!r} is not one of vanilla, reasoning, mix")
    return _kind(data_dir, captions)


def _kind(data_dir: Path, captions: str) -> datasets.Dataset:
    folder = Path(data_dir) / KINDS[captions]
    if not folder.is_dir():
        raise CaptionDataError(
            f"caption.data_dir '{data_dir}' has no {KINDS[captions]}/ dataset; run `rft annotate` with "
            f"--tasks {KINDS[captions]} (or --templated) into it"
        )
    try:
        dataset = datasets.load_from_disk(str(folder))
    except FileNotFoundError:
        raise CaptionDataError(f"'{folder}' is not a dataset saved with Dataset.save_to_disk") from None
    check_columns(dataset, folder)
    if len(dataset) == 0:
        raise CaptionDataError(f"'{folder}' holds no captions; annotate the source images first")
    wrong = set(dataset["kind"]) - {KINDS[captions]}
    if wrong:
        raise CaptionDataError(f"'{folder}' holds {sorted(wrong)} rows; it must hold {KINDS[captions]} only")
    check_image_counts(dataset)
    return dataset


def mixed_captions(vanilla: datasets.Dataset, reasoning: datasets.Dataset, seed: int) -> datasets.Dataset:
    """One caption per image that has both: a seeded half (rounded down) reasoning, the rest vanilla."""
    vanilla_rows = {sample_id: i for i, sample_id in enumerate(vanilla["sample_id"])}
    reasoning_rows = {sample_id: i for i, sample_id in enumerate(reasoning["sample_id"])}
    both = sorted(set(vanilla_rows) & set(reasoning_rows))
    if not both:
        raise CaptionDataError(
            "the mix needs images with both a vanilla and a reasoning caption, and no image has both; "
            "annotate the same images with both caption tasks"
        )
    random.Random(seed).shuffle(both)
    with_reasoning = set(both[: len(both) // 2])
    chosen_vanilla = vanilla.select(sorted(vanilla_rows[i] for i in both if i not in with_reasoning))
    chosen_reasoning = reasoning.select(sorted(reasoning_rows[i] for i in with_reasoning))
    columns = list(CONVERSATION_FEATURES)
    parts = [
        part.select_columns(columns).cast(CONVERSATION_FEATURES)
        for part in (chosen_vanilla, chosen_reasoning)
    ]
    return datasets.concatenate_datasets(parts).shuffle(seed=seed)


def class_index(label: Any) -> int:
    """0 live, 1 spoof, from a ClassLabel index or the string."""
    if isinstance(label, str):
        return {"live": 0, "spoof": 1}[label]
    return int(label)


@dataclass
class CaptionCollator:
    """Caption conversations -> model inputs, `labels` (the caption tokens, -100 elsewhere) and `class_labels`.
    Rendering, tokenisation and image expansion are the SFT collator's (no tools in the system turn)."""

    processor: ProcessorMixin
    max_length: int | None = None
    conversations: MultiTurnSFTCollator = field(init=False)

    def __post_init__(self) -> None:
        self.conversations = MultiTurnSFTCollator(self.processor, 1.0, self.max_length, tools=[])

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = self.conversations(rows)
        batch.pop("loss_weights")
        batch.pop("assistant_turn")
        batch["class_labels"] = torch.tensor([class_index(row["label"]) for row in rows], dtype=torch.long)
        return batch

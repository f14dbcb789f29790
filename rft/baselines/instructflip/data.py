"""Batches for InstructFLIP from the project's datasets (rft.data.schema.FEATURES rows): CLIP pixel values,
the live/spoof target and every question's answer (rft.baselines.instructflip.questions), -100 where the
dataset does not annotate it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from rft.baselines.instructflip.model import IGNORE
from rft.baselines.instructflip.questions import CONTENT, STYLE_QUESTIONS, row_answers

QUESTION_NAMES = (CONTENT.name, *(q.name for q in STYLE_QUESTIONS))


def is_spoof(label: Any) -> int:
    """The dataset's label (ClassLabel 0/1, or the strings) as 1 for spoof, 0 for live."""
    return int(label == "spoof") if isinstance(label, str) else int(label)


def pixel_values(processor: Any, images: Sequence[Any]) -> torch.Tensor:
    rgb = [image.convert("RGB") if isinstance(image, Image.Image) else image for image in images]
    return processor(images=rgb, return_tensors="pt").pixel_values


def collate(rows: Sequence[dict[str, Any]], processor: Any) -> dict[str, Any]:
    """One training batch: pixel_values, is_spoof (batch,) and answers {question: (batch,) option indices}."""
    answers = [row_answers(row) for row in rows]
    return {
        "pixel_values": pixel_values(processor, [row["image"] for row in rows]),
        "is_spoof": torch.tensor([is_spoof(row["label"]) for row in rows]),
        "answers": {
            name: torch.tensor([IGNORE if a[name] is None else a[name] for a in answers])
            for name in QUESTION_NAMES
        },
    }


def epoch_order(n_rows: int, seed: int, epoch: int) -> list[int]:
    """The shuffled row order of one epoch, a function of (seed, epoch) only, so a resumed run replays it."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n_rows, generator=generator).tolist()


def epoch_batches(
    dataset: Any,
    processor: Any,
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    skip: int = 0,
    num_workers: int = 0,
) -> torch.utils.data.DataLoader:
    """The epoch's batches after the first `skip` (those a resumed run has already trained on)."""
    order = epoch_order(len(dataset), seed, epoch)[skip * batch_size :]
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=order,
        # The loader draws its workers' base seed from this generator, not from torch's global one, whose
        # state (dropout, the cue noise) a checkpoint restores: where an epoch starts must not shift it.
        generator=torch.Generator().manual_seed(seed * 100_003 + epoch),
        collate_fn=lambda rows: collate(rows, processor),
        num_workers=num_workers,
    )


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        "pixel_values": batch["pixel_values"].to(device),
        "is_spoof": batch["is_spoof"].to(device),
        "answers": {name: value.to(device) for name, value in batch["answers"].items()},
    }

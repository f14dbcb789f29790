"""The instructions of paper 000 (Sec. 3.1, Table 1 / Table 7) and the labels each sample gives them.

One content question (11 options: real face and CelebA-Spoof's ten attack types) and three style questions
(illumination, environment, camera quality). A sample's answer to each is an option index, or None when the
dataset does not annotate it (CelebA-Spoof leaves live images' illumination and environment, and every
image's camera quality, unannotated): that question then adds nothing to the loss for the sample.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rft.data.importers.celeba_spoof import SPOOF_TYPES as CELEBA_SPOOF_TYPES
from rft.data.schema import SpoofType

PREFIX = "Choose the correct option for the following question: "


@dataclass(frozen=True)
class Question:
    name: str
    text: str
    options: tuple[str, ...]  # the answer texts, in the paper's order

    def instruction(self) -> str:
        """The prompt: the paper's sentence, then the numbered options (Table 7)."""
        listed = " ".join(f"({i}) {option}" for i, option in enumerate(self.options, start=1))
        return f"{PREFIX}{self.text} Options: {listed}"


CONTENT = Question(
    "content",
    "Which type of spoof is in this image?",
    (
        "Real face",
        "Photo",
        "Poster",
        "A4-paper",
        "2D face mask",
        "2D upper-body mask",
        "2D region mask",
        "PC screen",
        "Pad screen",
        "Phone screen",
        "3D mask",
    ),
)
ILLUMINATION = Question(
    "illumination", "What is the illumination condition in this image?", ("Normal", "Strong", "Back", "Dark")
)
ENVIRONMENT = Question("environment", "What is the environment in this image?", ("Indoor", "Outdoor"))
CAMERA_QUALITY = Question(
    "camera_quality", "What is the camera quality in this image?", ("Low", "Medium", "High")
)
STYLE_QUESTIONS = (ILLUMINATION, ENVIRONMENT, CAMERA_QUALITY)

# CelebA-Spoof's 11 classes in Table 1's order: the importer's list, one place for it.
CONTENT_TYPES = tuple(CELEBA_SPOOF_TYPES)
# Attack types outside the 11 (other datasets' vocabulary) answer with the nearest class (our choice,
# docs/BASELINES.md); the synthetic benchmark names its fine type itself (meta "fine_spoof_type").
NEAREST_CONTENT_TYPE = {
    SpoofType.PRINT: SpoofType.PRINT_PHOTO,
    SpoofType.REPLAY: SpoofType.REPLAY_PC,
    SpoofType.MASK_PAPER: SpoofType.MASK_FACE,
    SpoofType.MASK_TRANSPARENT: SpoofType.MASK_3D,
    SpoofType.MASK_HALF: SpoofType.MASK_REGION,
    SpoofType.MASK_SILICONE: SpoofType.MASK_3D,
    SpoofType.MASK_RIGID: SpoofType.MASK_3D,
    SpoofType.MASK_FLEXIBLE: SpoofType.MASK_3D,
    SpoofType.MANNEQUIN: SpoofType.MASK_3D,
    SpoofType.FAKEHEAD: SpoofType.MASK_3D,
    SpoofType.PARTIAL_EYE: SpoofType.MASK_REGION,
    SpoofType.PARTIAL_FUNNYEYE: SpoofType.MASK_REGION,
    SpoofType.PARTIAL_MOUTH: SpoofType.MASK_REGION,
    SpoofType.PARTIAL_PAPERGLASSES: SpoofType.MASK_REGION,
}
# The datasets' attribute words -> option index. "middle" is the synthetic benchmark's word for Medium.
STYLE_VALUES: dict[str, dict[str, int]] = {
    "illumination": {"normal": 0, "strong": 1, "back": 2, "dark": 3},
    "environment": {"indoor": 0, "outdoor": 1},
    "camera_quality": {"low": 0, "medium": 1, "middle": 1, "high": 2},
}


def content_index(spoof_type: str, meta: Mapping[str, Any] | None = None) -> int | None:
    """The content answer of a sample: the dataset's fine type (meta "fine_spoof_type") when it names one of
    the 11, else its spoof type or the nearest of the 11; None for a type with no counterpart (makeup, ...)."""
    fine = (meta or {}).get("fine_spoof_type")
    for candidate in (fine, spoof_type):
        if candidate in CONTENT_TYPES:
            return CONTENT_TYPES.index(SpoofType(candidate))
    nearest = NEAREST_CONTENT_TYPE.get(SpoofType(spoof_type))
    return None if nearest is None else CONTENT_TYPES.index(nearest)


def style_index(question: str, value: str | None) -> int | None:
    """The option index of an attribute value, None when it is not annotated or not one of the options."""
    if value is None:
        return None
    return STYLE_VALUES[question].get(value.strip().lower())


def row_answers(row: Mapping[str, Any]) -> dict[str, int | None]:
    """A dataset row's (rft.data.schema.FEATURES) answer to every question."""
    meta = row.get("meta")
    meta = json.loads(meta) if isinstance(meta, str) else meta
    answers = {CONTENT.name: content_index(row["spoof_type"], meta)}
    answers.update({q.name: style_index(q.name, row.get(q.name)) for q in STYLE_QUESTIONS})
    return answers

"""The sample schema shared by every importer, the synthetic benchmark, the trainers and evaluation.

One `Sample` per image. Attack types come from one shared vocabulary (`SpoofType`) that covers CelebA-Spoof's
11 classes, SiW-Mv2's 14 spoof folders, (HQ-)WMCA's attack instruments, and the MCIO / SURF / CeFA
attacks. Samples are stored as Hugging Face `datasets` (Arrow/Parquet) with an `Image` feature.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import datasets
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rft.outputs import Legacy, replace_output_dir

Label = Literal["live", "spoof"]


class SpoofType(StrEnum):
    """Shared attack vocabulary. The comment names where each type comes from."""

    LIVE = "live"
    # Print attacks: CelebA-Spoof Photo / Poster / A4, MCIO, SiW-Mv2 Print, (HQ-)WMCA print, synthetic.
    PRINT = "print"
    PRINT_PHOTO = "print_photo"
    PRINT_POSTER = "print_poster"
    PRINT_A4 = "print_a4"
    # Replay attacks: CelebA-Spoof PC / Pad / Phone, MCIO, SiW-Mv2 Replay, (HQ-)WMCA replay, synthetic.
    REPLAY = "replay"
    REPLAY_PC = "replay_pc"
    REPLAY_PAD = "replay_pad"
    REPLAY_PHONE = "replay_phone"
    # Masks: CelebA-Spoof Face / Upper Body / Region / 3D mask; SiW-Mv2 Mask_*; (HQ-)WMCA rigid, flexible, paper.
    MASK_FACE = "mask_face"
    MASK_UPPER_BODY = "mask_upper_body"
    MASK_REGION = "mask_region"
    MASK_3D = "mask_3d"
    MASK_PAPER = "mask_paper"
    MASK_TRANSPARENT = "mask_transparent"
    MASK_HALF = "mask_half"
    MASK_SILICONE = "mask_silicone"
    MASK_RIGID = "mask_rigid"
    MASK_FLEXIBLE = "mask_flexible"
    MANNEQUIN = "mannequin"
    FAKEHEAD = "fakehead"
    # Makeup: SiW-Mv2 Makeup_Co / Makeup_Im / Makeup_Ob; HQ-WMCA makeup.
    MAKEUP_COSMETIC = "makeup_cosmetic"
    MAKEUP_IMPERSONATION = "makeup_impersonation"
    MAKEUP_OBFUSCATION = "makeup_obfuscation"
    # Partial attacks: SiW-Mv2 Partial_*; (HQ-)WMCA glasses; HQ-WMCA tattoo, wig.
    PARTIAL_EYE = "partial_eye"
    PARTIAL_FUNNYEYE = "partial_funnyeye"
    PARTIAL_MOUTH = "partial_mouth"
    PARTIAL_PAPERGLASSES = "partial_paperglasses"
    TATTOO = "tattoo"
    WIG = "wig"
    OTHER = "other"


_FAMILY_PREFIXES = {"print", "replay", "mask", "makeup", "partial"}
_FAMILY_OF_OTHERS = {
    "live": "live",
    "mannequin": "mask",
    "fakehead": "mask",
    "tattoo": "partial",
    "wig": "partial",
}


def _family(spoof_type: SpoofType) -> str:
    prefix = spoof_type.value.split("_")[0]
    return prefix if prefix in _FAMILY_PREFIXES else _FAMILY_OF_OTHERS.get(spoof_type.value, "other")


ATTACK_CATEGORY: dict[SpoofType, str] = {t: _family(t) for t in SpoofType}


def attack_category(spoof_type: SpoofType | str) -> str:
    """Coarse family of an attack type: live, print, replay, mask, makeup, partial or other."""
    return ATTACK_CATEGORY[SpoofType(spoof_type)]


class Sample(BaseModel):
    """One face image and everything known about it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1, description="Unique within a dataset, stable across re-imports.")
    image_path: str | None = Field(None, description="Absolute path of the (cropped) image file.")
    image_bytes: bytes | None = Field(None, description="Encoded image (PNG/JPEG) when not on disk.")
    label: Label
    spoof_type: SpoofType
    dataset: str = Field(..., min_length=1)
    domain: str = Field(..., min_length=1, description="Domain in cross-domain protocols (often = dataset).")
    split: str = Field("all", description="train / dev / test as released, or 'all'.")
    subject_id: str | None = None
    video_id: str | None = None
    frame_index: int | None = None
    illumination: str | None = None
    environment: str | None = None
    camera_quality: str | None = None
    face_box: tuple[int, int, int, int] | None = Field(None, description="x0, y0, x1, y1 in image pixels.")
    caption_vanilla: str | None = None
    caption_reasoning: str | None = None
    trajectory: list[dict[str, Any]] | None = Field(None, description="Tool-augmented conversation turns.")
    meta: dict[str, Any] = Field(default_factory=dict, description="Importer/generator specific metadata.")

    @model_validator(mode="after")
    def _consistent(self) -> Sample:
        if self.image_path is None and self.image_bytes is None:
            raise ValueError("a sample needs image_path or image_bytes")
        if (self.label == "live") != (self.spoof_type is SpoofType.LIVE):
            raise ValueError(f"label '{self.label}' contradicts spoof_type '{self.spoof_type.value}'")
        return self


# The command named in the marker of a dataset folder written by `save_dataset` without a command of its own.
SAVE_DATASET = "rft.data.schema.save_dataset"

FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=["live", "spoof"]),
        "spoof_type": datasets.Value("string"),
        "attack_category": datasets.Value("string"),
        "dataset": datasets.Value("string"),
        "domain": datasets.Value("string"),
        "split": datasets.Value("string"),
        "subject_id": datasets.Value("string"),
        "video_id": datasets.Value("string"),
        "frame_index": datasets.Value("int64"),
        "illumination": datasets.Value("string"),
        "environment": datasets.Value("string"),
        "camera_quality": datasets.Value("string"),
        "face_box": datasets.Sequence(datasets.Value("int64"), length=4),
        "caption_vanilla": datasets.Value("string"),
        "caption_reasoning": datasets.Value("string"),
        "trajectory": datasets.Value("string"),
        "meta": datasets.Value("string"),
    }
)


def sample_to_row(sample: Sample) -> dict[str, Any]:
    """A `Sample` as a row of `FEATURES` (nested fields as JSON strings, the image as path or bytes)."""
    row = sample.model_dump(exclude={"image_path", "image_bytes", "trajectory", "meta"})
    row["spoof_type"] = sample.spoof_type.value
    row["attack_category"] = attack_category(sample.spoof_type)
    row["image"] = {"path": sample.image_path, "bytes": sample.image_bytes}
    row["face_box"] = list(sample.face_box) if sample.face_box else None
    row["trajectory"] = json.dumps(sample.trajectory) if sample.trajectory is not None else None
    row["meta"] = json.dumps(sample.meta, sort_keys=True)
    return row


def samples_to_dataset(samples: Iterable[Sample]) -> datasets.Dataset:
    rows = [sample_to_row(s) for s in samples]
    columns = {name: [r[name] for r in rows] for name in FEATURES}
    return datasets.Dataset.from_dict(columns, features=FEATURES)


def save_dataset(
    dataset: datasets.Dataset, out_dir: Path, *, command: str = SAVE_DATASET, legacy: Legacy | None = None
) -> Path:
    """Write `dataset` to `out_dir` atomically (rft.outputs.replace_output_dir): a new folder, or one that
    `command` wrote before; any other folder is refused with OutputDirError and left as it was."""
    replace_output_dir(out_dir, command, lambda staging: dataset.save_to_disk(str(staging)), legacy=legacy)
    return Path(out_dir)


def load_dataset_dir(path: Path) -> datasets.Dataset:
    return datasets.load_from_disk(str(path))

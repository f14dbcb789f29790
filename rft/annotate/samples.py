"""The images to annotate and what is known about each one (label, attack type, capture metadata)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rft.annotate.prompts import attack_description, hint_sentence
from rft.parsing.labels import as_label


@dataclass
class ToolResult:
    """One tool call made during an annotation and what the expert said about its picture."""

    name: str
    arguments: dict[str, Any]
    spoof_probability: float | None


@dataclass
class SampleContext:
    """Everything about one image that the pipeline knows. A teacher over HTTP sees only the messages built
    from it; the templated writer reads it directly (it has no eyes)."""

    sample_id: str
    label: str  # 'live' | 'spoof'
    spoof_type: str
    attack_category: str
    domain: str
    width: int
    height: int
    face_box: tuple[int, int, int, int] | None = None
    illumination: str | None = None
    environment: str | None = None
    camera_quality: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # Expert probabilities of the default-argument picture of each expert's tool (templated writer only).
    evidence: dict[str, float] = field(default_factory=dict)
    # Tool calls of the current trajectory attempt, in order.
    tool_results: list[ToolResult] = field(default_factory=list)

    @property
    def hint(self) -> str:
        return hint_sentence(self.spoof_type, self.attack_category)

    @property
    def attack(self) -> str:
        return attack_description(self.spoof_type, self.attack_category)

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass
class Sample:
    context: SampleContext
    image: np.ndarray  # RGB uint8


def _meta(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value) if isinstance(value, str) else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def sample_from_row(row: dict[str, Any], dataset_dir: Path | str = "") -> Sample:
    """A dataset row (rft.data.schema) as a Sample; ValueError naming the sample for an unreadable image."""
    sample_id = row["id"]
    try:
        image = np.asarray(row["image"].convert("RGB"))
    except (OSError, ValueError, AttributeError) as error:
        raise ValueError(f"{dataset_dir}: sample {sample_id}: cannot read its image ({error})") from None
    label = as_label(row["label"])
    box = row.get("face_box")
    context = SampleContext(
        sample_id=sample_id,
        label=label,
        spoof_type=row.get("spoof_type") or label,
        attack_category=row.get("attack_category") or ("live" if label == "live" else "other"),
        domain=row.get("domain") or "",
        width=int(image.shape[1]),
        height=int(image.shape[0]),
        face_box=tuple(int(v) for v in box) if box else None,
        illumination=row.get("illumination"),
        environment=row.get("environment"),
        camera_quality=row.get("camera_quality"),
        meta=_meta(row.get("meta")),
    )
    return Sample(context=context, image=image)


def load_sample(dataset, index: int, dataset_dir: Path | str = "") -> Sample:
    """Row `index` of `dataset` as a Sample. A row whose image does not decode (the image column decodes on
    access) raises ValueError naming the sample."""
    try:
        row = dataset[index]
    except (OSError, ValueError) as error:
        sample_id = dataset.select_columns(["id"])[index]["id"]
        raise ValueError(f"{dataset_dir}: sample {sample_id}: cannot read its image ({error})") from None
    return sample_from_row(row, dataset_dir)

"""Per-sample records of a target-domain evaluation, kept so that the dashboard can show each evaluated image
with its scores (worst errors first).

Layout, under the evaluation's folder (a GRPO run's `eval/`):

    samples_step_<N>.jsonl             one JSON object per evaluated sample (`sample_row`)
    images/<domain>/<key>.png          each evaluated image, written once (the same images every evaluation)

A record names its image by a path relative to that folder, so a reader resolves it inside the run folder
and never follows a path the data chose (sample ids come from datasets and may hold any character).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from rft.outputs import replaced_atomically, write_text_atomically

SAMPLES_PREFIX = "samples_step_"
IMAGES_FOLDER = "images"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def samples_file(folder: Path, step: int) -> Path:
    return Path(folder) / f"{SAMPLES_PREFIX}{step:06d}.jsonl"


def samples_files(folder: Path) -> dict[int, Path]:
    """Evaluation step -> its samples file under `folder`, in step order (none when `folder` is missing)."""
    steps = {}
    for path in Path(folder).glob(f"{SAMPLES_PREFIX}*.jsonl"):
        step = path.name[len(SAMPLES_PREFIX) : -len(".jsonl")]
        if step.isdigit() and step.isascii() and path.is_file():
            steps[int(step)] = path
    return dict(sorted(steps.items()))


def latest_samples_file(folder: Path) -> Path | None:
    """The samples file of the latest evaluation step under `folder`, or None when there is none."""
    steps = samples_files(folder)
    return steps[max(steps)] if steps else None


def image_name(domain: str, sample_id: str) -> str:
    """The image's path relative to the evaluation folder: a safe folder name for the domain and a hash of
    the sample id (ids may hold '/', '..' or any other character)."""
    folder = _UNSAFE.sub("_", domain).strip("._") or "domain"
    key = hashlib.sha1(f"{domain}\x00{sample_id}".encode()).hexdigest()[:20]
    return f"{IMAGES_FOLDER}/{folder}/{key}.png"


def save_images(folder: Path, names: Sequence[str], images: Sequence[Image.Image]) -> None:
    """Each image as PNG under `folder`, unless its file is already there (written by an earlier evaluation);
    a file appears whole or not at all."""
    for name, image in zip(names, images, strict=True):
        target = Path(folder) / name
        if target.is_file():
            continue
        with replaced_atomically(target, "wb") as handle:
            image.convert("RGB").save(handle, format="PNG")


def sample_row(
    row: Mapping[str, Any],
    *,
    image: str,
    fast: float | None = None,
    final: float | None = None,
    forced: bool | None = None,
    turns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One sample's record: the report row (id, label, attack_type, domain), P(spoof) of each scored answer
    under `scores`, whether the final answer was forced, the final episode's turns, and the image's path."""
    scores = {name: value for name, value in (("fast", fast), ("final", final)) if value is not None}
    record = {key: row.get(key) for key in ("id", "label", "attack_type", "domain")}
    record |= {"scores": scores, "image": image}
    if forced is not None:
        record["forced"] = forced
    if turns is not None:
        record["turns"] = list(turns)
    return record


def write_samples(folder: Path, step: int, records: Sequence[Mapping[str, Any]]) -> Path:
    """All samples of one evaluation as `samples_step_<step>.jsonl`, renamed into place whole."""
    return write_text_atomically(
        samples_file(folder, step), "".join(json.dumps(record) + "\n" for record in records)
    )


def split_samples(results: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, dict], list[dict]]:
    """`evaluate_targets` results without their per-sample rows, and those rows (all domains, in order)."""
    reports: dict[str, dict] = {}
    samples: list[dict] = []
    for domain, result in results.items():
        reports[domain] = {key: value for key, value in result.items() if key != "samples"}
        samples += list(result.get("samples") or [])
    return reports, samples

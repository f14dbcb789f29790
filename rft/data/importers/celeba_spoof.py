"""CelebA-Spoof: `metas/intra_test/{train,test}_label.json` map `Data/<split>/<subject>/live|spoof/<n>.jpg` to
44 labels (0-39 CelebA face attributes, 40 spoof type, 41 illumination, 42 environment, 43 live/spoof); each
image has a `<n>_BB.txt` with the face box `x y w h score` in coordinates scaled to 224 x 224."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from rft.data.importers.common import FractionBox, Scan, SourceItem, require_file
from rft.data.schema import SpoofType

T = TypeVar("T")
LABEL_FILES = {"train": "train_label.json", "test": "test_label.json"}
N_LABELS = 44
SPOOF_TYPES = [
    SpoofType.LIVE,
    SpoofType.PRINT_PHOTO,
    SpoofType.PRINT_POSTER,
    SpoofType.PRINT_A4,
    SpoofType.MASK_FACE,
    SpoofType.MASK_UPPER_BODY,
    SpoofType.MASK_REGION,
    SpoofType.REPLAY_PC,
    SpoofType.REPLAY_PAD,
    SpoofType.REPLAY_PHONE,
    SpoofType.MASK_3D,
]
# Index 0 of both means "live image: not annotated".
ILLUMINATIONS = [None, "normal", "strong", "back", "dark"]
ENVIRONMENTS = [None, "indoor", "outdoor"]
BOX_SCALE = 224  # the _BB.txt boxes are given for the image resized to 224 x 224
KEPT_WITHOUT_BOX = "kept without the dataset's face box"


def label_file(root: Path, split: str) -> Path:
    """The released location first (metas/intra_test/), then the root itself."""
    name = LABEL_FILES[split]
    released = root / "metas" / "intra_test" / name
    return released if released.is_file() else root / name


def key_lines(text: str) -> dict[str, int]:
    """Line number of every `"key":` in a JSON text, so errors can name the line of a bad entry."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        for key in re.findall(r'"([^"]+)"\s*:', line):
            lines.setdefault(key, number)
    return lines


def pick(table: list[T], value: int, what: str) -> T:
    if not 0 <= value < len(table):
        raise ValueError(f"{what} {value} is outside 0..{len(table) - 1}")
    return table[value]


def parse_box(bb_file: Path) -> FractionBox:
    """`x y w h score` at 224 scale -> fractions of the image (real pixels = v * size / 224)."""
    values = bb_file.read_text().split()
    try:
        x, y, w, h = (float(v) for v in values[:4])
    except ValueError:
        raise ValueError(f"expected 'x y w h score', got {' '.join(values)!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"face box has no area (w={w}, h={h})")
    return x / BOX_SCALE, y / BOX_SCALE, (x + w) / BOX_SCALE, (y + h) / BOX_SCALE


def parse_entry(root: Path, split: str, key: str, labels: object) -> SourceItem:
    if not isinstance(labels, list) or len(labels) != N_LABELS or not all(isinstance(v, int) for v in labels):
        raise ValueError(f"expected a list of {N_LABELS} integers, got {str(labels)[:60]}")
    spoof_type = pick(SPOOF_TYPES, labels[40], "spoof type (index 40)")
    if labels[43] != int(spoof_type is not SpoofType.LIVE):
        raise ValueError(
            f"live/spoof flag (index 43) is {labels[43]} but the spoof type (index 40) is {labels[40]}"
        )
    parts = Path(key).parts
    return SourceItem(
        path=root / key,
        spoof_type=spoof_type,
        split=split,
        subject_id=parts[-3] if len(parts) >= 3 else None,
        illumination=pick(ILLUMINATIONS, labels[41], "illumination (index 41)"),
        environment=pick(ENVIRONMENTS, labels[42], "environment (index 42)"),
        meta={"face_attributes": labels[:40]},
    )


def with_box(scan: Scan, item: SourceItem) -> SourceItem:
    """The item with its _BB.txt box; a missing or malformed box file is reported and the image kept."""
    bb_file = item.path.with_name(item.path.stem + "_BB.txt")
    if not item.path.exists():
        return item  # Scan.add reports the missing image itself
    if not bb_file.is_file():
        scan.note(bb_file, None, f"missing face box file {bb_file}", KEPT_WITHOUT_BOX)
        return item
    try:
        return replace(item, box=parse_box(bb_file))
    except ValueError as error:
        scan.note(bb_file, 1, str(error), KEPT_WITHOUT_BOX)
        return item


def scan_label_file(scan: Scan, root: Path, split: str) -> None:
    path = label_file(root, split)
    text = path.read_text()
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        scan.reject(path, error.lineno, f"not valid JSON ({error.msg}); no {split} images imported")
        return
    if not isinstance(entries, dict):
        scan.reject(path, 1, f"expected an object of image path -> labels; no {split} images imported")
        return
    lines = key_lines(text)
    for key, labels in entries.items():
        try:
            item = parse_entry(root, split, key, labels)
        except ValueError as error:
            scan.reject(path, lines.get(key), f"entry '{key}': {error}")
            continue
        scan.add(with_box(scan, item), path, lines.get(key))


def scan_celeba_spoof(root: Path) -> Scan:
    present = [split for split in LABEL_FILES if label_file(root, split).is_file()]
    if not present:
        require_file(label_file(root, "train"), "CelebA-Spoof label file train_label.json / test_label.json")
    scan = Scan()
    for split in present:
        scan_label_file(scan, root, split)
    return scan

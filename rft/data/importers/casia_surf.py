"""CASIA-SURF and CASIA-SURF CeFA. Both are multi-modal; only the colour (visible light) modality is read,
as in paper 001.

SURF: list files `train_list.txt` (train), `val_private_list.txt` (dev) and `test_private_list.txt` (test)
with lines `<colour path> <depth path> <ir path> <label>`, label 1 real and 0 attack, paths relative to the
root (`Training/real_part/<subject>/...`, `Training/fake_part/<subject>/...`, `Val/...`, `Testing/...`).
Every SURF attack is a printed photo, some with eyes / nose / mouth cut out: all map to `print`.

CeFA: one folder per video, named `<race>_<subject>_<device>_<session>_<PAI>` (e.g. `1_000001_1_1_1`), with
colour frames in `profile/` (`depth/` and `ir/` are ignored). Race 1 AF, 2 CA, 3 EA; PAI 1 live, 2 print,
3 replay, 4 3D print mask, 5 silicone mask. The split follows the CeFA protocols' subject ranges: subjects
1-200 of each race train, 201-300 dev, 301-500 test.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from rft.data.importers.common import DatasetImportError, Scan, SourceItem, scan_list_file, scan_paths
from rft.data.schema import SpoofType

SURF_LISTS = {"train_list.txt": "train", "val_private_list.txt": "dev", "test_private_list.txt": "test"}
SURF_LABELS = {"1": SpoofType.LIVE, "0": SpoofType.PRINT}

CEFA_NAME = re.compile(r"(?P<race>[1-3])_(?P<subject>\d+)_(?P<device>\d+)_(?P<session>\d+)_(?P<pai>\d+)")
CEFA_RACES = {"1": "AF", "2": "CA", "3": "EA"}
CEFA_PAI = {
    "1": SpoofType.LIVE,
    "2": SpoofType.PRINT,
    "3": SpoofType.REPLAY,
    "4": SpoofType.MASK_3D,
    "5": SpoofType.MASK_SILICONE,
}
CEFA_MODALITIES = ("profile", "depth", "ir")
SUBJECTS_PER_RACE = 500


def parse_surf_line(root: Path, split: str, text: str) -> SourceItem:
    fields = text.split()
    if len(fields) != 4 or fields[3] not in SURF_LABELS:
        raise ValueError("expected '<colour path> <depth path> <ir path> <label 0|1>'")
    colour = Path(fields[0])
    parts = colour.parts
    in_training = len(parts) > 2 and parts[1] in ("real_part", "fake_part")
    return SourceItem(
        path=root / colour,
        spoof_type=SURF_LABELS[fields[3]],
        split=split,
        subject_id=parts[2] if in_training else None,
    )


def scan_casia_surf(root: Path) -> Scan:
    lists = {root / name: split for name, split in SURF_LISTS.items() if (root / name).is_file()}
    if not lists:
        raise DatasetImportError(f"casia_surf: none of {', '.join(SURF_LISTS)} under {root}")
    scan = Scan()
    for list_file, split in lists.items():
        scan_list_file(scan, list_file, partial(parse_surf_line, root, split))
    return scan


def cefa_split(subject: int) -> str:
    # Subject numbers restart at 1 for every race; taken modulo 500 in case a copy numbers them globally.
    within_race = (subject - 1) % SUBJECTS_PER_RACE + 1
    return "train" if within_race <= 200 else "dev" if within_race <= 300 else "test"


def parse_cefa_folder(video: Path) -> SourceItem:
    match = CEFA_NAME.fullmatch(video.name)
    if match is None or match["pai"] not in CEFA_PAI:
        raise ValueError(
            f"unexpected CeFA folder name '{video.name}' "
            "(expected <race 1-3>_<subject>_<device>_<session>_<PAI 1-5>)"
        )
    if not (video / "profile").is_dir():
        raise ValueError(f"missing colour frames folder {video / 'profile'}")
    return SourceItem(
        path=video / "profile",
        spoof_type=CEFA_PAI[match["pai"]],
        split=cefa_split(int(match["subject"])),
        subject_id=f"{match['race']}_{match['subject']}",
        meta={
            "race": CEFA_RACES[match["race"]],
            "device": int(match["device"]),
            "session": int(match["session"]),
        },
    )


def cefa_videos(root: Path) -> list[Path]:
    """Folders holding any modality folder: a video whose colour frames may still be missing."""
    return sorted({p.parent for name in CEFA_MODALITIES for p in root.rglob(name) if p.is_dir()})


def scan_cefa(root: Path) -> Scan:
    videos = cefa_videos(root)
    if not videos:
        raise DatasetImportError(f"cefa: no video folders with a profile/ (colour) subfolder under {root}")
    scan = Scan()
    scan_paths(scan, videos, parse_cefa_folder)
    return scan

"""Idiap Replay-Attack: `{train,devel,test}/real/*.mov` and `{train,devel,test}/attack/{fixed,hand}/*.mov`.

Attack names read `attack_<device>_client<id>_session<n>_<quality>_<photo|video>_<lighting>.mov`. The device
decides the attack: `print` is a printed photo, `highdef` (iPad) and `mobile` (iPhone) show the photo or video
on a screen, i.e. a replay attack. The `enroll/` folder and the face-location files are not used.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from rft.data.importers.common import DatasetImportError, Scan, SourceItem, is_video, scan_paths
from rft.data.schema import SpoofType

SPLIT_FOLDERS = {"train": "train", "devel": "dev", "test": "test"}
REAL_NAME = re.compile(
    r"client(?P<client>\d+)_session(?P<session>\d+)_.*_(?P<lighting>controlled|adverse)(_\d+)?"
)
ATTACK_NAME = re.compile(
    r"attack_(?P<device>print|highdef|mobile)_client(?P<client>\d+)_session(?P<session>\d+)_"
    r"(?P<quality>[a-z]+)_(?P<medium>photo|video)_(?P<lighting>controlled|adverse)"
)
DEVICE_TYPES = {"print": SpoofType.PRINT, "highdef": SpoofType.REPLAY, "mobile": SpoofType.REPLAY}


def parse_real(split: str, path: Path) -> SourceItem:
    match = REAL_NAME.fullmatch(path.stem)
    if match is None:
        raise ValueError(
            f"unexpected real video name '{path.name}' (expected client<id>_session<n>_..._<lighting>)"
        )
    return SourceItem(
        path=path,
        spoof_type=SpoofType.LIVE,
        split=split,
        subject_id=match["client"],
        meta={"session": int(match["session"]), "lighting": match["lighting"]},
    )


def parse_attack(split: str, path: Path) -> SourceItem:
    match = ATTACK_NAME.fullmatch(path.stem)
    if match is None:
        raise ValueError(
            f"unexpected attack video name '{path.name}' "
            "(expected attack_<print|highdef|mobile>_client<id>_session<n>_<quality>_<photo|video>_<light>)"
        )
    return SourceItem(
        path=path,
        spoof_type=DEVICE_TYPES[match["device"]],
        split=split,
        subject_id=match["client"],
        meta={
            "session": int(match["session"]),
            "lighting": match["lighting"],
            "device": match["device"],
            "medium": match["medium"],
            "support": path.parent.name,  # fixed or hand-held
        },
    )


def videos_in(folder: Path, pattern: str) -> list[Path]:
    return sorted(p for p in folder.glob(pattern) if is_video(p))


def scan_replay_attack(root: Path) -> Scan:
    folders = {name: split for name, split in SPLIT_FOLDERS.items() if (root / name).is_dir()}
    if not folders:
        raise DatasetImportError(f"replay_attack: none of train/, devel/, test/ under {root}")
    scan = Scan()
    for name, split in folders.items():
        scan_paths(scan, videos_in(root / name / "real", "*"), partial(parse_real, split))
        scan_paths(scan, videos_in(root / name / "attack", "*/*"), partial(parse_attack, split))
    return scan

"""CASIA-FASD: `{train,test}_release/<subject>/<name>.avi` with names 1-8 and HR_1-HR_4.

1, 2, HR_1 real; 3, 4, HR_2 warped photo; 5, 6, HR_3 cut photo (eyes cut out); 7, 8, HR_4 video replay.
Odd numbers are low quality, even numbers normal quality, HR_* high quality.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from rft.data.importers.common import DatasetImportError, Scan, SourceItem, is_video, scan_paths
from rft.data.schema import SpoofType

SPLIT_FOLDERS = {"train_release": "train", "test_release": "test"}
# name -> (spoof type, attack, camera quality)
VIDEOS = {
    "1": (SpoofType.LIVE, None, "low"),
    "2": (SpoofType.LIVE, None, "normal"),
    "HR_1": (SpoofType.LIVE, None, "high"),
    "3": (SpoofType.PRINT, "warped_photo", "low"),
    "4": (SpoofType.PRINT, "warped_photo", "normal"),
    "HR_2": (SpoofType.PRINT, "warped_photo", "high"),
    "5": (SpoofType.PRINT, "cut_photo", "low"),
    "6": (SpoofType.PRINT, "cut_photo", "normal"),
    "HR_3": (SpoofType.PRINT, "cut_photo", "high"),
    "7": (SpoofType.REPLAY, "video", "low"),
    "8": (SpoofType.REPLAY, "video", "normal"),
    "HR_4": (SpoofType.REPLAY, "video", "high"),
}


def parse_path(split: str, path: Path) -> SourceItem:
    if path.stem not in VIDEOS:
        raise ValueError(f"unknown CASIA-FASD video name '{path.name}' (expected 1-8 or HR_1-HR_4 .avi)")
    spoof_type, attack, quality = VIDEOS[path.stem]
    return SourceItem(
        path=path,
        spoof_type=spoof_type,
        split=split,
        subject_id=path.parent.name,
        camera_quality=quality,
        meta={"attack": attack} if attack else {},
    )


def scan_casia_fasd(root: Path) -> Scan:
    folders = {name: split for name, split in SPLIT_FOLDERS.items() if (root / name).is_dir()}
    if not folders:
        raise DatasetImportError(f"casia_fasd: neither train_release/ nor test_release/ under {root}")
    scan = Scan()
    for name, split in folders.items():
        videos = sorted(p for p in (root / name).glob("*/*") if is_video(p))
        scan_paths(scan, videos, partial(parse_path, split))
    return scan

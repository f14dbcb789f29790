"""MSU-MFSD: `scene01/real/real_client001_android_SD_scene01.mp4`,
`scene01/attack/attack_client001_android_SD_{ipad_video,iphone_video,printed_photo}_scene01.mp4` (laptop
videos are .mov) and the subject lists `train_sub_list.txt` / `test_sub_list.txt` (one client number per
line) that define the splits."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from rft.data.importers.common import Scan, SourceItem, is_video, numbered_lines, require_file, scan_paths
from rft.data.schema import SpoofType

SUBJECT_LISTS = {"train": "train_sub_list.txt", "test": "test_sub_list.txt"}
NAME = re.compile(
    r"(?P<kind>real|attack)_client(?P<client>\d+)_(?P<camera>android|laptop)_(?P<resolution>[A-Z]+)_"
    r"(?:(?P<attack>ipad_video|iphone_video|printed_photo)_)?scene(?P<scene>\d+)"
)
ATTACK_TYPES = {
    None: SpoofType.LIVE,
    "printed_photo": SpoofType.PRINT,
    "ipad_video": SpoofType.REPLAY,
    "iphone_video": SpoofType.REPLAY,
}


def read_subject_splits(scan: Scan, root: Path) -> dict[int, str]:
    """client number -> split; malformed lines and clients listed in both files are rejected."""
    splits: dict[int, str] = {}
    for split, name in SUBJECT_LISTS.items():
        list_file = require_file(root / name, f"MSU-MFSD subject list {name}")
        for number, text in numbered_lines(list_file):
            if not text.isdigit():
                scan.reject(list_file, number, f"expected a client number, got {text!r}")
            elif splits.setdefault(int(text), split) != split:
                scan.reject(list_file, number, f"client {text} is listed in both subject lists")
    return splits


def parse_path(splits: dict[int, str], path: Path) -> SourceItem:
    match = NAME.fullmatch(path.stem)
    if match is None or (match["kind"] == "real") != (match["attack"] is None):
        raise ValueError(
            f"unexpected video name '{path.name}' (expected real_client<id>_<camera>_<res>_scene<n> or "
            "attack_client<id>_<camera>_<res>_<ipad_video|iphone_video|printed_photo>_scene<n>)"
        )
    client = int(match["client"])
    if client not in splits:
        raise ValueError(f"client {client} is in neither {' nor '.join(SUBJECT_LISTS.values())}")
    return SourceItem(
        path=path,
        spoof_type=ATTACK_TYPES[match["attack"]],
        split=splits[client],
        subject_id=f"{client:03d}",
        meta={"camera": match["camera"], "attack": match["attack"], "scene": int(match["scene"])},
    )


def scan_msu_mfsd(root: Path) -> Scan:
    scan = Scan()
    splits = read_subject_splits(scan, root)
    videos = sorted(p for p in root.glob("scene*/*/*") if is_video(p) and p.parent.name in ("real", "attack"))
    scan_paths(scan, videos, partial(parse_path, splits))
    return scan

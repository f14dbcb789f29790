"""Generic folder importer, for datasets without an importer of their own (SiW, Rose-Youtu, HKBU-MARs-V1+,
CASIA-SURF-3DMask, HiFiMask, or your own data):

    ROOT/real/...                      live images and videos, nested freely
    ROOT/fake/<attack_type>/...        attacks of one `SpoofType` (print, replay, mask_3d, ...)
    ROOT/fake/...                      attacks of unknown type (spoof type `other`)

Optionally the same layout sits under ROOT/train, ROOT/dev and ROOT/test; otherwise every sample gets split
`all`. Images are imported one by one, videos are frame-sampled.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from rft.data.importers.common import (
    SPLIT_NAMES,
    DatasetImportError,
    Scan,
    SourceItem,
    is_image,
    is_video,
    media_files,
    normalize_split,
    scan_paths,
)
from rft.data.schema import SpoofType


def split_roots(root: Path) -> dict[str, Path]:
    """`train/`, `dev/`, `test/` (any spelling) when present, else the root itself as split `all`."""
    splits = {
        normalize_split(p.name): p for p in root.iterdir() if p.is_dir() and p.name.lower() in SPLIT_NAMES
    }
    return splits or {"all": root}


def attack_type_of(folder: Path) -> SpoofType:
    try:
        return SpoofType(folder.name.lower())
    except ValueError:
        known = ", ".join(t.value for t in SpoofType if t is not SpoofType.LIVE)
        raise ValueError(f"unknown attack folder '{folder.name}': rename it to one of {known}") from None


def attack_folders(scan: Scan, fake: Path) -> list[tuple[Path, SpoofType]]:
    """`fake/<attack_type>/` folders; a folder whose name is no attack type is reported with its files."""
    folders = []
    for folder in sorted(p for p in fake.iterdir() if p.is_dir()):
        try:
            folders.append((folder, attack_type_of(folder)))
        except ValueError as error:
            scan.reject(folder, None, f"{error}; its {len(media_files(folder))} files are not imported")
    return folders


def make_item(split: str, spoof_type: SpoofType, path: Path) -> SourceItem:
    return SourceItem(path=path, spoof_type=spoof_type, split=split)


def scan_split(scan: Scan, split: str, folder: Path) -> None:
    real, fake = folder / "real", folder / "fake"
    if not real.is_dir() and not fake.is_dir():
        raise DatasetImportError(
            f"folder importer: neither real/ nor fake/ under {folder} (see docs/DATA.md)"
        )
    groups = [(real, SpoofType.LIVE)] if real.is_dir() else []
    if fake.is_dir():
        groups += attack_folders(scan, fake)
        loose = sorted(p for p in fake.iterdir() if p.is_file() and (is_image(p) or is_video(p)))
        scan_paths(scan, loose, partial(make_item, split, SpoofType.OTHER))
    for group, spoof_type in groups:
        scan_paths(scan, media_files(group), partial(make_item, split, spoof_type))


def scan_folder(root: Path) -> Scan:
    scan = Scan()
    for split, folder in split_roots(root).items():
        scan_split(scan, split, folder)
    return scan

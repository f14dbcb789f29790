"""SiW-Mv2: `Live/` and the 14 folders of `Spoof/`, each holding videos (`Live_12.mov`, `Print_3.mov`) or
folders of extracted frames named like the videos (`Live_12/1.png ...`).

Both the short folder names (`Makeup_Co`, `Mask_Trans`, ...) and the release's long ones (`Makeup_Cosmetic`,
`Mask_TransparentMask`, `Silicone`, ...) are accepted. The subject id is the number that ends the file name
(the release's protocol lists call `Live_257` a subject). No split is released for cross-domain use: every
sample gets split `all`.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from rft.data.importers.common import DatasetImportError, Scan, SourceItem, media_entries, scan_paths
from rft.data.schema import SpoofType

SPOOF_FOLDERS = {
    "makeup_co": SpoofType.MAKEUP_COSMETIC,
    "makeup_cosmetic": SpoofType.MAKEUP_COSMETIC,
    "makeup_im": SpoofType.MAKEUP_IMPERSONATION,
    "makeup_impersonation": SpoofType.MAKEUP_IMPERSONATION,
    "makeup_ob": SpoofType.MAKEUP_OBFUSCATION,
    "makeup_obfuscation": SpoofType.MAKEUP_OBFUSCATION,
    "mannequin": SpoofType.MANNEQUIN,
    "mask_half": SpoofType.MASK_HALF,
    "mask_halfmask": SpoofType.MASK_HALF,
    "mask_silicone": SpoofType.MASK_SILICONE,
    "silicone": SpoofType.MASK_SILICONE,
    "mask_trans": SpoofType.MASK_TRANSPARENT,
    "mask_transparentmask": SpoofType.MASK_TRANSPARENT,
    "mask_paper": SpoofType.MASK_PAPER,
    "mask_papermask": SpoofType.MASK_PAPER,
    "partial_eye": SpoofType.PARTIAL_EYE,
    "partial_funnyeye": SpoofType.PARTIAL_FUNNYEYE,
    "partial_funnyeyeglasses": SpoofType.PARTIAL_FUNNYEYE,
    "partial_mouth": SpoofType.PARTIAL_MOUTH,
    "partial_paperglasses": SpoofType.PARTIAL_PAPERGLASSES,
    "print": SpoofType.PRINT,
    "replay": SpoofType.REPLAY,
}
SUBJECT = re.compile(r"_(\d+)$")


def parse_entry(spoof_type: SpoofType, path: Path) -> SourceItem:
    stem = path.stem if path.is_file() else path.name
    subject = SUBJECT.search(stem)
    if subject is None:
        raise ValueError(f"cannot read the subject number from '{path.name}' (expected e.g. Live_12.mov)")
    return SourceItem(
        path=path, spoof_type=spoof_type, subject_id=subject[1], meta={"folder": path.parent.name}
    )


def spoof_folders(scan: Scan, spoof_root: Path) -> list[tuple[Path, SpoofType]]:
    """The attack folders under `Spoof/`; an unknown folder name is reported, not guessed."""
    folders = []
    for folder in sorted(p for p in spoof_root.iterdir() if p.is_dir()):
        spoof_type = SPOOF_FOLDERS.get(folder.name.lower())
        if spoof_type is None:
            scan.reject(
                folder,
                None,
                f"unknown SiW-Mv2 attack folder '{folder.name}' (known: {', '.join(SPOOF_FOLDERS)})",
            )
        else:
            folders.append((folder, spoof_type))
    return folders


def scan_siw_mv2(root: Path) -> Scan:
    if not (root / "Live").is_dir() and not (root / "Spoof").is_dir():
        raise DatasetImportError(f"siw_mv2: neither Live/ nor Spoof/ under {root}")
    scan = Scan()
    folders = [(root / "Live", SpoofType.LIVE)] if (root / "Live").is_dir() else []
    if (root / "Spoof").is_dir():
        folders += spoof_folders(scan, root / "Spoof")
    for folder, spoof_type in folders:
        scan_paths(scan, media_entries(folder), partial(parse_entry, spoof_type))
    return scan

"""WMCA and HQ-WMCA, as extracted colour frames plus a metadata CSV.

The original releases ship HDF5 files per presentation and multi-channel streams; this project reads the
colour channel once extracted to images. Expected layout (see docs/DATA.md):

    ROOT/metadata.csv                 presentation_id,client_id,pai_type[,split]
    ROOT/<presentation_id>/*.png      colour frames (or ROOT/<presentation_id>/color/*.png)

`pai_type` is bonafide or an attack instrument (print, replay, rigid_mask, flexible_mask, paper_mask,
silicone_mask, glasses, funny_eyes, makeup, tattoo, wig, mannequin, fakehead, or any `SpoofType` value);
`split` (train/dev/test, optional) comes from the release's protocol; without it every sample gets `all`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from rft.data.importers.common import Scan, SourceItem, normalize_split, require_file
from rft.data.schema import SpoofType

METADATA_FILE = "metadata.csv"
REQUIRED_COLUMNS = ("presentation_id", "client_id", "pai_type")
PAI_TYPES = {
    "bonafide": SpoofType.LIVE,
    "bona_fide": SpoofType.LIVE,
    "live": SpoofType.LIVE,
    "real": SpoofType.LIVE,
    "print": SpoofType.PRINT,
    "replay": SpoofType.REPLAY,
    "rigid_mask": SpoofType.MASK_RIGID,
    "flexible_mask": SpoofType.MASK_FLEXIBLE,
    "paper_mask": SpoofType.MASK_PAPER,
    "silicone_mask": SpoofType.MASK_SILICONE,
    # (HQ-)WMCA "glasses" are mostly paper glasses; funny-eye glasses can be named explicitly.
    "glasses": SpoofType.PARTIAL_PAPERGLASSES,
    "paper_glasses": SpoofType.PARTIAL_PAPERGLASSES,
    "funny_eyes": SpoofType.PARTIAL_FUNNYEYE,
    # HQ-WMCA's makeup hides the identity rather than imitating another one: an obfuscation attack.
    "makeup": SpoofType.MAKEUP_OBFUSCATION,
    "tattoo": SpoofType.TATTOO,
    "wig": SpoofType.WIG,
    "mannequin": SpoofType.MANNEQUIN,
    "fakehead": SpoofType.FAKEHEAD,
    "fake_head": SpoofType.FAKEHEAD,
}


def spoof_type_of(pai_type: str) -> SpoofType:
    name = pai_type.strip().lower().replace(" ", "_").replace("-", "_")
    if name in PAI_TYPES:
        return PAI_TYPES[name]
    try:
        return SpoofType(name)
    except ValueError:
        raise ValueError(
            f"unknown pai_type '{pai_type}' (known: {', '.join(PAI_TYPES)} or a SpoofType)"
        ) from None


def frames_folder(root: Path, presentation: str) -> Path:
    folder = root / presentation
    return folder / "color" if (folder / "color").is_dir() else folder


def parse_row(root: Path, row: dict[str, str | None]) -> SourceItem:
    if None in row:  # csv.DictReader files values beyond the header under the key None
        raise ValueError(f"more values than the header's columns: {row[None]}")
    values = {column: (row.get(column) or "").strip() for column in (*REQUIRED_COLUMNS, "split")}
    empty = [column for column in REQUIRED_COLUMNS if not values[column]]
    if empty:
        raise ValueError(f"empty {', '.join(empty)} (expected {', '.join(REQUIRED_COLUMNS)}[, split])")
    return SourceItem(
        path=frames_folder(root, values["presentation_id"]),
        spoof_type=spoof_type_of(values["pai_type"]),
        split=normalize_split(values["split"]) if values["split"] else "all",
        subject_id=values["client_id"],
        meta={"presentation_id": values["presentation_id"], "pai_type": values["pai_type"]},
    )


def scan_wmca(root: Path) -> Scan:
    metadata = require_file(
        root / METADATA_FILE, f"{METADATA_FILE} (columns {', '.join(REQUIRED_COLUMNS)}[, split])"
    )
    scan = Scan()
    with metadata.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            scan.reject(metadata, 1, f"header lacks column(s) {', '.join(missing)}; no rows imported")
            return scan
        for row in reader:
            try:
                item = parse_row(root, row)
            except ValueError as error:
                scan.reject(metadata, reader.line_num, str(error))
                continue
            scan.add(item, metadata, reader.line_num)
    return scan

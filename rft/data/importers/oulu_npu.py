"""OULU-NPU: videos `{Train,Dev,Test}_files/<Phone>_<Session>_<User>_<File>.avi` and protocol files
`Protocols/Protocol_<k>/{Train,Dev,Test}[_<n>].txt` with lines `+1,1_1_01_1` (+1 real, -1 attack).

File 1 is real, 2-3 print (two printers), 4-5 replay (two displays). Every protocol file is read and the
union taken, so each listed video is imported once with the split of the file that lists it.
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

from rft.data.importers.common import DatasetImportError, Scan, SourceItem, normalize_split, scan_list_file
from rft.data.schema import SpoofType

NAME = re.compile(r"(?P<phone>[1-6])_(?P<session>[1-3])_(?P<user>\d{2})_(?P<file>[1-5])")
FILE_TYPES = {
    "1": SpoofType.LIVE,
    "2": SpoofType.PRINT,
    "3": SpoofType.PRINT,
    "4": SpoofType.REPLAY,
    "5": SpoofType.REPLAY,
}


def parse_line(root: Path, split: str, text: str) -> SourceItem:
    label, _, name = (part.strip() for part in text.partition(","))
    match = NAME.fullmatch(name)
    if label not in ("+1", "-1") or match is None:
        raise ValueError("expected '+1,<phone>_<session>_<user>_<file>' or '-1,...' (e.g. '+1,1_1_01_1')")
    spoof_type = FILE_TYPES[match["file"]]
    if (label == "+1") != (spoof_type is SpoofType.LIVE):
        raise ValueError(
            f"label {label} contradicts file type {match['file']} of '{name}' (1 real, 2-5 attack)"
        )
    return SourceItem(
        path=root / f"{split.capitalize()}_files" / f"{name}.avi",
        spoof_type=spoof_type,
        split=split,
        subject_id=match["user"],
        meta={"phone": int(match["phone"]), "session": int(match["session"]), "file": int(match["file"])},
    )


def scan_oulu_npu(root: Path) -> Scan:
    protocol_files = sorted((root / "Protocols").glob("Protocol_*/*.txt"))
    if not protocol_files:
        raise DatasetImportError(
            f"oulu_npu: no protocol files under {root / 'Protocols'} (Protocol_*/Train.txt ...)"
        )
    scan = Scan()
    for protocol_file in protocol_files:
        try:
            split = normalize_split(protocol_file.stem.split("_")[0])
        except ValueError as error:
            scan.reject(protocol_file, None, f"{error}: not a Train/Dev/Test protocol file")
            continue
        scan_list_file(scan, protocol_file, partial(parse_line, root, split))
    return scan

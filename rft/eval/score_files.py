"""Per-sample score files: the common format every method's evaluation writes, so that `launch/compare.py`
puts any runs side by side (GRPO, DT-GRPO, the baselines).

A score folder holds one scores CSV per evaluated set, in `rft metrics`' format (docs/METRICS.md, columns
id,score,label,attack_type,video_id,domain,decision):

    FOLDER/dev.csv        the development set (optional): its EER threshold is the "dev threshold"
    FOLDER/<target>.csv   one per target domain (any other name)

A scored method fills `score` (probability of spoof); a decision-only one (e.g. an explanation read by a
judge) leaves it empty and fills `decision`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rft.eval.scored_samples import CSV_COLUMNS
from rft.eval.scores_csv import CsvError, read_scores_csv
from rft.outputs import replaced_atomically

DEV_SET = "dev"


def write_scores_csv(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """`rows` (dicts keyed by the CSV columns; missing ones left empty) as a scores CSV, written atomically."""
    with replaced_atomically(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({name: "" if row.get(name) is None else row[name] for name in CSV_COLUMNS})
    return path


@dataclass(frozen=True)
class ScoreFolder:
    """The rows of a score folder: the dev set's (None without dev.csv) and each target's."""

    folder: Path
    dev: list[dict[str, str]] | None
    targets: dict[str, list[dict[str, str]]]

    def target_rows(self) -> list[dict[str, str]]:
        """Every target's rows, each with its domain (the file's name where the row gives none)."""
        return [
            {**row, "domain": row.get("domain") or name}
            for name, rows in self.targets.items()
            for row in rows
        ]


def read_score_folder(folder: Path) -> ScoreFolder:
    """The score folder's CSVs (CsvError, in one line, when it has no target CSV or a CSV is malformed)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CsvError(
            f"{folder}: no such folder; give a folder of per-sample scores CSVs (dev.csv, <target>.csv)"
        )
    files = sorted(folder.glob("*.csv"))
    targets = {path.stem: read_scores_csv(path)[0] for path in files if path.stem != DEV_SET}
    if not targets:
        raise CsvError(f"{folder}: no target scores CSV (<target>.csv); evaluate the run first")
    dev_path = folder / f"{DEV_SET}.csv"
    dev = read_scores_csv(dev_path)[0] if dev_path.is_file() else None
    return ScoreFolder(folder, dev, targets)

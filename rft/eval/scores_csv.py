"""Reading a scores CSV (the format is in docs/METRICS.md): `read_scores_csv` checks the header and every row's
number of fields and keeps each row's file line, which `locate_input_error` puts in front of a row's
`InputError`. A problem is a `CsvError` already phrased for the user (file, line and fix).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rft.errors import RftError
from rft.eval.scored_samples import InputError, Source


class CsvError(RftError):
    """A problem with a CSV file, already phrased for the user (file, line and fix)."""


def read_scores_csv(path: Path) -> tuple[list[dict[str, str]], list[int]]:
    """The rows of a scores CSV and the file line of each (where it ends, if a quoted value spans lines).
    Checks the header and the number of fields of every row."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = header
            _check_header(path, header)
            rows, lines = [], []
            for row in reader:
                _check_field_count(path, reader.line_num, len(rows) + 1, row, len(header))
                rows.append(row)
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise CsvError(f"{path}: no such file; check the path") from None
    except UnicodeDecodeError:
        raise CsvError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    except OSError as error:
        raise CsvError(f"{path}: cannot read it ({error.strerror})") from None
    if not rows:
        raise CsvError(f"{path}: no data rows under the header; nothing to evaluate")
    return rows, lines


def _check_header(path: Path, header: Sequence[str]) -> None:
    if not header:
        raise CsvError(f"{path} line 1: empty file; the first line must be the header id,score,label,...")
    for column in ("id", "label"):
        if column not in header:
            raise CsvError(
                f"{path} line 1 (header): missing column {column!r}; the header needs id, label and score "
                "(or decision); see docs/METRICS.md"
            )
    if "score" not in header and "decision" not in header:
        raise CsvError(
            f"{path} line 1 (header): missing column 'score'; add the probability of spoof as 'score', or a "
            "'decision' column (live/spoof) for a decision-only model"
        )


def _check_field_count(
    path: Path, line: int, row_number: int, row: Mapping[Any, Any], n_columns: int
) -> None:
    # DictReader files surplus fields under the key None and fills missing ones with None.
    if None in row or None in row.values():
        raise CsvError(
            f"{path} line {line} (row {row_number}): the number of fields differs from the header's "
            f"{n_columns}; quote values that contain commas"
        )


def locate_input_error(error: InputError, files: Mapping[Source, tuple[Path | None, list[int]]]) -> str:
    """The error's message headed by its file and, for a row's error, the row's file line. `files` gives, per
    source, the file and the line of each of its rows (as `read_scores_csv` returns them)."""
    path, lines = files[error.source]
    if error.index is None:
        return f"{path}: {error}"
    return f"{path} line {lines[error.index]} (row {error.index + 1}): {error}"

"""The curves of a run's own training logs, whatever trainer wrote them: every numeric key of each entry,
one curve per key (each loss term of a baseline gets its own curve without any dashboard change).

Sources, at the run folder's top level:
- a JSON list of log entries (`train_log.json`: transformers' `trainer.state.log_history`, as the project's
  jobs write it at the end) or a JSON object holding one under `log_history` (`trainer_state.json`);
- while a run trains, the newest `checkpoints/checkpoint-<N>/trainer_state.json` (or `checkpoint-<N>/` at
  the top level), which transformers writes at every save;
- JSONL logs whose name holds "log" or "metrics" (`train_log.jsonl`, `metrics.jsonl`): one entry per line.

An entry's step is its `step` (or `global_step`), else, in a JSONL file, its number among the file's
entries (1, 2, ...); a JSON log's entry without a step is skipped. `epoch` and the step keys are not curves; booleans are not numbers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

JSON_LOGS = ("train_log.json", "trainer_state.json")
JSONL_NAME = re.compile(r"^(?!\.).*(log|metrics).*\.jsonl$")
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STEP_KEYS = ("step", "global_step")
NOT_CURVES = {*STEP_KEYS, "epoch"}
# transformers' TensorBoard callback adds "train/"; JSON logs name the same curves without it.
PREFIX = "train/"


def is_log_file(path: Path) -> bool:
    return (
        path.is_file()
        and not path.is_symlink()
        and (path.name in JSON_LOGS or bool(JSONL_NAME.match(path.name)))
    )


def newest_checkpoint_state(run_dir: Path) -> Path | None:
    """The trainer_state.json of the highest-numbered checkpoint under checkpoints/ or the run folder."""
    found: list[tuple[int, Path]] = []
    for folder in (run_dir / "checkpoints", run_dir):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for child in folder.iterdir():
            match = CHECKPOINT.match(child.name)
            state = child / "trainer_state.json"
            if match and not child.is_symlink() and state.is_file() and not state.is_symlink():
                found.append((int(match.group(1)), state))
    return max(found)[1] if found else None


def log_files(run_dir: Path) -> list[Path]:
    """The run's log files, the checkpoint's state first so that a finished run's own log wins."""
    files = sorted(path for path in run_dir.iterdir() if is_log_file(path)) if run_dir.is_dir() else []
    state = newest_checkpoint_state(run_dir)
    return ([state] if state is not None else []) + files


def entries_of(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(step, entry) of every log entry in the file; an unreadable file or line gives none (a reader never
    crashes on a file being written)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if path.suffix == ".jsonl":
        rows = [row for row in map(_json, text.splitlines()) if isinstance(row, dict)]
        return [(_step(row, number), row) for number, row in enumerate(rows, start=1)]
    document = _json(text)
    if isinstance(document, dict):
        document = document.get("log_history")
    if not isinstance(document, list):
        return []
    return [
        (_step(row, None), row) for row in document if isinstance(row, dict) and _step(row, None) is not None
    ]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _step(entry: dict[str, Any], fallback: int | None) -> int | None:
    for key in STEP_KEYS:
        value = entry.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return int(value)
    return fallback


def curves_of(entries: Iterable[tuple[int | None, dict[str, Any]]]) -> dict[str, dict[int, float]]:
    """Key -> step -> value over the entries; a later entry at a step replaces an earlier one's value."""
    curves: dict[str, dict[int, float]] = {}
    for step, entry in entries:
        if step is None:
            continue
        for key, value in entry.items():
            if key in NOT_CURVES or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            curves.setdefault(str(key).removeprefix(PREFIX), {})[step] = float(value)
    return {name: dict(sorted(points.items())) for name, points in sorted(curves.items())}


class LogsReader:
    """The curves of one run's log files, each file re-read only when its size or time changed."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._cache: dict[Path, tuple[tuple[int, int], list[tuple[int, dict[str, Any]]]]] = {}

    def series(self) -> dict[str, dict[int, float]]:
        entries: list[tuple[int, dict[str, Any]]] = []
        for path in log_files(self.run_dir):
            try:
                stat = path.stat()
            except OSError:
                continue
            key = (stat.st_size, stat.st_mtime_ns)
            cached = self._cache.get(path)
            if cached is None or cached[0] != key:
                cached = (key, entries_of(path))
                self._cache[path] = cached
            entries += cached[1]
        return curves_of(entries)

"""The rollout records of a run (rft.trainers.rollout_records): each step's episodes, what each episode
predicted, and the per-step statistics the curves and alerts are drawn from.

A step file is written whole and renamed into place, so a file is read whole or not at all; statistics are
cached by the file's size and modification time, so a poll re-reads only the steps that changed.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean, pstdev
from typing import Any

from rft.parsing.rft_fas import parse_think_answer
from rft.parsing.tar_fas import parse_episode, parse_fast_answer

STEP_FILE = re.compile(r"^step_(\d+)\.jsonl$")
# Optional keys a record may carry (the recorder of today writes neither): filters and per-type curves use
# them where present.
ATTACK_KEY, DOMAIN_KEY = "attack_type", "domain"


def step_files(run_dir: Path) -> dict[int, Path]:
    """Step number -> its records file, under run_dir/rollouts."""
    folder = run_dir / "rollouts"
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = STEP_FILE.match(path.name)
        if match and path.is_file():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def read_step(path: Path) -> list[dict[str, Any]]:
    """The records of one step; a line that is not a JSON object is skipped (a reader never crashes)."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def predicted_label(turns: Sequence[str]) -> str | None:
    """The episode's answer: the final answer of a multi-turn episode (paper 003), else the class of its one
    turn (paper 001's <answer>, or paper 003's fast answer)."""
    texts = [turn for turn in turns if isinstance(turn, str)]
    if len(texts) > 1:
        return parse_episode(texts).final_answer
    if not texts:
        return None
    return parse_think_answer(texts[0]).predicted or parse_fast_answer(texts[0]).predicted


def tool_names(record: dict[str, Any]) -> list[str]:
    return [str(call.get("name")) for call in record.get("tool_calls") or [] if isinstance(call, dict)]


def annotate(record: dict[str, Any]) -> dict[str, Any]:
    """The record with `predicted` and `correct` added (None when the episode gave no answer)."""
    predicted = predicted_label(record.get("turns") or [])
    label = record.get("label")
    return {**record, "predicted": predicted, "correct": None if predicted is None else predicted == label}


def _mean(values: Sequence[float]) -> float:
    return fmean(values) if values else math.nan


def _group_rewards(records: Sequence[dict[str, Any]]) -> list[list[float]]:
    groups: dict[Any, list[float]] = defaultdict(list)
    for record in records:
        groups[record.get("group")].append(float(record.get("reward", math.nan)))
    return list(groups.values())


def step_statistics(records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """One value per curve for one step: `reward`, `rewards/<column>`, `tools/rate` and `tools/rate/<tool>`
    (calls per episode), `tools/rate_by_attack/<type>`, `episodes/turns`, `episodes/tokens`,
    `episodes/malformed_share`, `episodes/correct_share`, `groups/zero_std_share`, `nan_rewards`."""
    count = len(records)
    if count == 0:
        return {}
    annotated = [annotate(record) for record in records]
    stats: dict[str, float] = {
        "reward": _mean([float(r.get("reward", math.nan)) for r in records]),
        "tools/rate": sum(len(tool_names(r)) for r in records) / count,
        "episodes/turns": _mean([len(r.get("turns") or []) for r in records]),
        "episodes/tokens": _mean([float(r.get("completion_tokens", 0)) for r in records]),
        "episodes/malformed_share": sum(r.get("stop_reason") == "malformed" for r in records) / count,
        "episodes/correct_share": sum(bool(r["correct"]) for r in annotated) / count,
    }
    columns: dict[str, list[float]] = defaultdict(list)
    for record in records:
        for name, value in (record.get("rewards") or {}).items():
            columns[name].append(float(value))
    stats.update({f"rewards/{name}": _mean(values) for name, values in sorted(columns.items())})
    calls = defaultdict(int)
    for record in records:
        for name in tool_names(record):
            calls[name] += 1
    stats.update({f"tools/rate/{name}": n / count for name, n in sorted(calls.items())})
    by_attack: dict[str, list[int]] = defaultdict(list)
    for record in records:
        if record.get(ATTACK_KEY) is not None:
            by_attack[str(record[ATTACK_KEY])].append(len(tool_names(record)))
    stats.update({f"tools/rate_by_attack/{name}": _mean(v) for name, v in sorted(by_attack.items())})
    groups = _group_rewards(records)
    stats["groups/zero_std_share"] = sum(len(g) > 1 and pstdev(g) == 0 for g in groups) / len(groups)
    stats["nan_rewards"] = float(
        sum(
            math.isnan(float(r.get("reward", 0))) or math.isnan(float(r.get("advantage", 0))) for r in records
        )
    )
    return stats


class RecordsReader:
    """Per-step statistics of one run, re-read only for the step files that changed since the last call."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._cache: dict[int, tuple[tuple[int, int], dict[str, float]]] = {}

    def statistics(self) -> dict[int, dict[str, float]]:
        result = {}
        for step, path in step_files(self.run_dir).items():
            try:
                stat = path.stat()
            except OSError:
                continue
            key = (stat.st_size, stat.st_mtime_ns)
            cached = self._cache.get(step)
            if cached is None or cached[0] != key:
                cached = (key, step_statistics(read_step(path)))
                self._cache[step] = cached
            result[step] = cached[1]
        return result

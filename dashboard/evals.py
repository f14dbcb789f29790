"""An evaluation's per-sample records (rft.eval.sample_records, under a run's eval/ folder): each sample's
scores with its image, worst errors first.

A sample's error under an answer is the probability that answer gives the wrong class (P(spoof) for a live
face, 1 - P(spoof) for a spoof): the most confident wrong answers come first. A sample counts as wrong when
its error is above 0.5 (the report's HTER uses the EER threshold instead; docs/DASHBOARD.md).
"""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath
from typing import Any

from dashboard.records import read_step
from rft.eval.sample_records import samples_files

EVAL_FOLDER = "eval"
WRONG_ABOVE = 0.5


def eval_files(run_dir: Path) -> dict[int, Path]:
    """Evaluation step -> its samples file, under run_dir/eval."""
    return samples_files(run_dir / EVAL_FOLDER)


def image_in_run(reference: Any) -> str | None:
    """The run-relative path of a record's image (relative to eval/), or None when the record names no
    plain relative path: the /files gate checks the rest (symlinks, missing files)."""
    if not isinstance(reference, str) or not reference or "\\" in reference or "\x00" in reference:
        return None
    path = PurePosixPath(reference)
    if path.is_absolute() or ".." in path.parts or reference.startswith("~"):
        return None
    return f"{EVAL_FOLDER}/{path.as_posix()}"


def error_of(label: Any, score: Any) -> float | None:
    """The probability given to the wrong class, or None for a score that is not a probability."""
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        return None
    if label == "live":
        return float(score)
    if label == "spoof":
        return 1.0 - float(score)
    return None


def _text(value: Any) -> str | None:
    """A record's value as text (None stays None): a record is data, and any JSON value may turn up."""
    return None if value is None else str(value)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def sample_view(record: dict[str, Any]) -> dict[str, Any]:
    given = record.get("scores") if isinstance(record.get("scores"), dict) else {}
    # A score that is not a finite number is shown as missing (JSON has no NaN).
    scores = {
        str(answer): score if error_of("live", score) is not None else None for answer, score in given.items()
    }
    errors = {answer: error_of(record.get("label"), score) for answer, score in scores.items()}
    return {
        "id": str(record.get("id")),
        "label": _text(record.get("label")),
        "domain": _text(record.get("domain")),
        "attack_type": _text(record.get("attack_type")),
        "scores": scores,
        "errors": errors,
        "wrong": {answer: error > WRONG_ABOVE for answer, error in errors.items() if error is not None},
        "forced": record.get("forced") is True,
        "turns": [turn for turn in _list(record.get("turns")) if isinstance(turn, str)],
        "image": image_in_run(record.get("image")),
    }


def eval_view(run: str, run_dir: Path, step: int) -> dict[str, Any]:
    """One evaluation's samples, with what the filters can choose from; the page sorts them by the error of
    the answer it shows."""
    path = eval_files(run_dir).get(step)
    if path is None:
        raise KeyError(f"run {run!r} has no evaluation samples for step {step}")
    samples = [sample_view(record) for record in read_step(path)]
    answers = sorted({str(answer) for sample in samples for answer in sample["scores"]})
    # The final answer (after the tools) first: it is the one the method is judged by.
    answers.sort(key=lambda answer: (answer != "final", answer != "fast", answer))
    return {
        "run": run,
        "step": step,
        "samples": samples,
        "choices": {
            "answer": answers,
            "domain": sorted({str(s["domain"]) for s in samples if s["domain"] is not None}),
            "attack_type": sorted({str(s["attack_type"]) for s in samples if s["attack_type"] is not None}),
        },
    }

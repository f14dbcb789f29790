"""InstructFLIP's evaluation into the common report: the LLM-free path's P(spoof) (the classifier C; the
cue map is not part of the score) for every image of a target domain, the report `rft.eval.report.compute_report`
makes of them (HTER, AUC, TPR@FPR=1%, APCER per attack, as for the VLM runs), and the per-sample scores as
the scores CSV `rft metrics` reads (docs/METRICS.md), so any later comparison recomputes the same metrics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rft.baselines.instructflip.data import pixel_values
from rft.baselines.instructflip.model import InstructFlip
from rft.eval.report import compute_report
from rft.eval.score_files import write_scores_csv
from rft.eval.target import report_rows, subsample, with_scores

ANSWER = "classifier"  # the report's key, beside the VLM runs' "fast" / "final"


@torch.no_grad()
def spoof_scores(
    model: InstructFlip, dataset: Any, processor: Any, *, batch_size: int, device: torch.device
) -> list[float]:
    """P(spoof) of every row, in order, from `InstructFlip.predict` (no T5 forward)."""
    was_training = model.training
    model.eval()
    scores: list[float] = []
    try:
        for start in range(0, len(dataset), batch_size):
            images = dataset[start : start + batch_size]["image"]
            p_spoof, _ = model.predict(pixel_values(processor, images).to(device))
            scores.extend(p_spoof.float().cpu().tolist())
    finally:
        model.train(was_training)
    return scores


def scored_rows(
    model: InstructFlip, dataset: Any, processor: Any, name: str, **kwargs: Any
) -> list[dict[str, Any]]:
    return with_scores(report_rows(dataset, name), spoof_scores(model, dataset, processor, **kwargs))


def evaluate_targets(
    model: InstructFlip,
    processor: Any,
    *,
    targets: Mapping[str, Any],
    dev: Any | None,
    out: Path,
    batch_size: int,
    device: torch.device,
    max_samples: int | None = None,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per target domain {"n_samples", "classifier": report}; the scores go to out/scores/<domain>.csv (and
    the dev split's to out/scores/dev.csv, for HTER at the dev threshold)."""
    kwargs = {"batch_size": batch_size, "device": device}
    results: dict[str, dict[str, Any]] = {}
    if dev is not None:
        write_scores_csv(out / "scores" / "dev.csv", scored_rows(model, dev, processor, "dev", **kwargs))
    for name, dataset in targets.items():
        rows = scored_rows(model, subsample(dataset, max_samples, seed), processor, name, **kwargs)
        write_scores_csv(out / "scores" / f"{name}.csv", rows)
        results[name] = {"n_samples": len(rows), ANSWER: compute_report(rows)}
    return results

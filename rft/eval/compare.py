"""Runs side by side on one protocol: the common metrics of each run's per-sample score folder
(rft.eval.score_files) in one Markdown table and one ROC plot with a curve per run.

Per run, on its target sets pooled (every target CSV of the folder):

- HTER at the dev threshold (the EER threshold of the run's dev.csv, applied unchanged), when it has one;
- HTER at the EER threshold (the target set's own, as SSDG / FLIP report it; equal to the EER);
- AUC and TPR@FPR=1% (spoof positive);
- APCER per attack type, at the dev threshold when there is one, else at the EER threshold.

A decision-only run (no scores: e.g. explanations read by a judge) has HTER from its decisions (shown in
both HTER columns, marked) and no AUC, TPR or ROC curve. Every run must have been evaluated on the same
target sets (the CSVs' names), or the comparison is refused: it would not be one protocol.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rft.errors import RftError
from rft.eval.metrics import RocCurve
from rft.eval.render import EvaluatedSet, percent, write_roc_plot
from rft.eval.report import compute_report, roc_curves
from rft.eval.score_files import ScoreFolder
from rft.eval.scored_samples import has_scores, load_samples
from rft.outputs import claim_output_dir

COMPARE_COMMAND = "rft compare"  # named in the marker of the folders it writes (rft.outputs)
DECISIONS_MARK = "†"


class CompareError(RftError):
    """Runs that cannot be compared, said in one line."""


@dataclass(frozen=True)
class RunResult:
    """One run's row: its pooled-target metrics blocks at the dev and at the EER threshold, and its ROC."""

    name: str
    targets: tuple[str, ...]
    at_dev: dict[str, Any] | None
    at_eer: dict[str, Any]
    roc: RocCurve | None

    @property
    def scored(self) -> bool:
        return self.roc is not None

    @property
    def reported(self) -> dict[str, Any]:
        """The block whose APCERs the table shows: at the dev threshold when there is one."""
        return self.at_dev if self.at_dev is not None else self.at_eer


def evaluate_run(name: str, folder: ScoreFolder) -> RunResult:
    """The run's row from its score folder."""
    rows = folder.target_rows()
    samples = load_samples(rows)
    scored = has_scores(samples)
    at_eer = compute_report(samples)["overall"]
    at_dev = None
    if scored and folder.dev is not None:
        at_dev = compute_report(samples, threshold_mode="dev", dev_rows=folder.dev)["overall"]
    roc = roc_curves(samples)["overall"] if scored else None
    return RunResult(name, tuple(sorted(folder.targets)), at_dev, at_eer, roc)


def check_same_protocol(results: Sequence[RunResult]) -> None:
    first = results[0]
    for result in results[1:]:
        if result.targets != first.targets:
            raise CompareError(
                f"run {result.name!r} was evaluated on targets {list(result.targets)} but {first.name!r} on "
                f"{list(first.targets)}; compare runs of one protocol (the same target CSVs)"
            )


def attack_types(results: Sequence[RunResult]) -> list[str]:
    return sorted({attack for result in results for attack in result.reported["attack_types"]})


def comparison_table(results: Sequence[RunResult]) -> list[str]:
    """The Markdown lines of the table, one row per run."""
    attacks = attack_types(results)
    header = ["run", "n (live/spoof)", "HTER (dev thr.)", "HTER (EER thr.)", "AUC", "TPR@FPR=1%"]
    header += [f"APCER {attack}" for attack in attacks]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        block = result.at_eer
        if result.scored:
            dev = percent(result.at_dev["hter"]) if result.at_dev else "n/a"
            eer = percent(block["hter"])
        else:
            dev = eer = f"{percent(block['hter'])}{DECISIONS_MARK}"
        cells = [result.name, f"{block['n_samples']} ({block['n_live']}/{block['n_spoof']})", dev, eer]
        cells += [percent(block["auc"]), percent(block["tpr_at_fpr_1pct"])]
        apcers = result.reported["attack_types"]
        cells += [percent(apcers[a]["apcer"]) if a in apcers else "" for a in attacks]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def comparison_markdown(results: Sequence[RunResult]) -> str:
    targets = ", ".join(results[0].targets)
    notes = [
        "Rates in %, on the pooled target sets; spoof is the positive class (docs/METRICS.md).",
        "HTER (dev thr.): at the EER threshold of the run's dev set; n/a when the run has no dev scores.",
        "HTER (EER thr.): at the target set's own EER threshold (equals its EER).",
        "APCER per attack type: at the dev threshold when the run has one, else at the EER threshold.",
    ]
    if any(not result.scored for result in results):
        notes.append(f"{DECISIONS_MARK} decision-only run: HTER of its decisions; no AUC, TPR or ROC curve.")
    lines = [f"# Comparison on {targets}", "", *comparison_table(results), "", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def write_comparison(out_dir: Path, results: Sequence[RunResult]) -> list[Path]:
    """comparison.md, comparison.json and roc.png (one curve per scored run) in `out_dir` (new, or this
    command's own: rft.outputs), each renamed into place when complete."""
    if not results:
        raise CompareError("no runs to compare; give NAME=FOLDER for each run")
    check_same_protocol(results)
    claim_output_dir(out_dir, COMPARE_COMMAND)
    names = ["comparison.md", "comparison.json", "roc.png"]
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".compare-") as staging:
        staged = Path(staging)
        (staged / names[0]).write_text(comparison_markdown(results))
        (staged / names[1]).write_text(json.dumps([_as_json(r) for r in results], indent=2) + "\n")
        sets = [EvaluatedSet(r.name, r.reported, r.roc) for r in results if r.scored]
        if sets:
            write_roc_plot(sets, "spoof", staged / names[2])
        for name in names:
            if (staged / name).exists():
                os.replace(staged / name, out_dir / name)
    if not any(r.scored for r in results):
        (out_dir / "roc.png").unlink(missing_ok=True)
    return [out_dir / name for name in names if (out_dir / name).exists()]


def _as_json(result: RunResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "targets": list(result.targets),
        "at_dev": result.at_dev,
        "at_eer": result.at_eer,
    }

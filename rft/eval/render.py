"""What a metrics report looks like to a reader: the Markdown tables of metrics.md and the ROC plot roc.png.

The renderer takes plain data: a list of `EvaluatedSet`s, each a name, that set's metrics block (the
`overall` block of an `rft.eval.report.compute_report` report, or one of its `domains`) and, when the set has
scores, its ROC curve. `report_sets` lists one report's own sets (pooled, then each domain); a comparison of
several runs would give one set per run to the same `metrics_table` and `write_roc_plot`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from rft.eval.metrics import Positive, RocCurve

# The rates of a metrics block shown as percentages, in the table's column order after the threshold.
PERCENT_COLUMNS = ("hter", "auc", "eer", "tpr_at_fpr_1pct", "far", "frr", "accuracy")


@dataclass(frozen=True)
class EvaluatedSet:
    """One named evaluated set: its metrics block (keys as in a report's `overall`) and its ROC, if scored."""

    name: str
    metrics: Mapping[str, Any]
    roc: RocCurve | None = None


def report_sets(
    report: Mapping[str, Any], curves: Mapping[str, RocCurve] | None = None
) -> list[EvaluatedSet]:
    """The report's pooled set ("overall") then each domain, with its ROC from `curves` (keyed like
    `rft.eval.report.roc_curves`) when given."""
    curves = curves or {}
    blocks = {"overall": report["overall"], **report.get("domains", {})}
    return [EvaluatedSet(name, block, curves.get(name)) for name, block in blocks.items()]


def percent(value: float | None) -> str:
    """A rate in [0, 1] as a percentage with two decimals; "n/a" for a metric that was not computed."""
    return "n/a" if value is None else f"{100 * value:.2f}"


def _threshold_text(value: float | None) -> str:
    return "decisions" if value is None else f"{value:.4g}"


def _table_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


# -------------------------------------------------------------------------------------- markdown


def metrics_table(sets: Sequence[EvaluatedSet], positive: Positive) -> list[str]:
    """The Markdown lines of the table with one row per set: counts, threshold, HTER, AUC, EER, TPR@FPR=1%
    (`positive` the class whose TPR it is), FAR, FRR, accuracy, APCER_max (worst attack), BPCER and ACER."""
    lines = [
        f"| set | n (live/spoof) | threshold | HTER | AUC | EER | TPR@FPR=1% ({positive}) | FAR | FRR "
        "| accuracy | APCER_max | BPCER | ACER |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for evaluated in sets:
        block = evaluated.metrics
        cells = [
            evaluated.name,
            f"{block['n_samples']} ({block['n_live']}/{block['n_spoof']})",
            _threshold_text(block["threshold"]),
            *(percent(block[key]) for key in PERCENT_COLUMNS),
            f"{percent(block['apcer_max'])} ({block['worst_attack']})",
            percent(block["bpcer"]),
            percent(block["acer"]),
        ]
        lines.append(_table_row(cells))
    return lines


def _domain_average_row(average: Mapping[str, Any]) -> str:
    """The "Avg." row under the metrics table: only the columns averaged over domains are filled."""
    name = f"Avg. ({average['n_domains']} domains)"
    hter, auc, tpr = (percent(average[key]) for key in ("hter", "auc", "tpr_at_fpr_1pct"))
    return _table_row([name, "", "", hter, auc, "", tpr, "", "", "", "", "", ""])


def attack_table(attack_types: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The Markdown lines of the per-attack-type table (a metrics block's `attack_types`)."""
    lines = ["| attack type | count | APCER | AUC vs all live |", "|---|---|---|---|"]
    for attack, stats in attack_types.items():
        cells = [attack, str(stats["count"]), percent(stats["apcer"]), percent(stats["auc"])]
        lines.append(_table_row(cells))
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """metrics.md: settings, one row per set (overall, domains, Avg.), then the overall per-attack table."""
    settings = report["settings"]
    positive = settings["positive"]
    lines = [
        "# Face anti-spoofing metrics",
        "",
        f"Input: {settings['input']}s at {settings['level']} level; "
        f"threshold mode: {settings['threshold_mode']}; TPR@FPR=1% with {positive} as the positive class. "
        "Rates in %. Conventions: docs/METRICS.md.",
        "",
        *metrics_table(report_sets(report), positive),
    ]
    if "domain_average" in report:
        lines.append(_domain_average_row(report["domain_average"]))
    lines += ["", "## Per attack type (overall)", "", *attack_table(report["overall"]["attack_types"])]
    notes = list(report["notes"])
    if settings["input"] == "decision":
        notes.append("no ROC plot (roc.png): decision-only input has no scores to sweep a threshold over")
    if notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------- ROC plot


def _operating_point(block: Mapping[str, Any], positive: Positive) -> tuple[float, float]:
    """(FPR, TPR) at the block's reported threshold, `positive` being the class whose TPR it is."""
    if positive == "spoof":
        return block["frr"], 1 - block["far"]
    return block["far"], 1 - block["frr"]


def write_roc_plot(sets: Sequence[EvaluatedSet], positive: Positive, path: Path) -> None:
    """A PNG with one ROC line per set that has a ROC, its AUC in the legend and a dot at the reported
    threshold's operating point; sets without a ROC (decision-only) are left out."""
    # A bare Figure, not pyplot: no global backend or figure registry, so this is safe in any process.
    figure = Figure(figsize=(5.5, 5))
    axes = figure.subplots()
    for evaluated in sets:
        if evaluated.roc is None:
            continue
        label = f"{evaluated.name} (AUC {100 * evaluated.metrics['auc']:.2f}%)"
        line = axes.plot(evaluated.roc.fpr, evaluated.roc.tpr, label=label)[0]
        fpr, tpr = _operating_point(evaluated.metrics, positive)
        axes.plot([fpr], [tpr], "o", color=line.get_color())
    axes.plot([0, 1], [0, 1], ":", color="grey", linewidth=1)
    other = "live" if positive == "spoof" else "spoof"
    axes.set_xlabel(f"FPR ({other} flagged as {positive})")
    axes.set_ylabel(f"TPR ({positive} detected)")
    axes.set_title(f"ROC, {positive} positive (dot: reported threshold)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)

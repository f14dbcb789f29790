"""`rft metrics`: the HTER / AUC / EER / TPR@FPR / ISO 30107-3 report of a scores CSV.

    rft metrics scores.csv --out runs/eval/metrics
    rft metrics scores.csv --out DIR --threshold-mode dev --dev dev_scores.csv --video-level

The trainer's evaluation calls `compute_report` on in-memory samples instead; both give the same dict, which
the command writes as DIR/metrics.json next to DIR/metrics.md (a table) and DIR/roc.png. Conventions and the
CSV format are in docs/METRICS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from rft.eval import metrics
from rft.eval.metrics import DEFAULT_THRESHOLD, Positive, ThresholdMode

Label = Literal["live", "spoof"]
Source = Literal["rows", "dev_rows"]

UNSPECIFIED_ATTACK = "unspecified"
MAX_FPR = 0.01
CSV_COLUMNS = ("id", "score", "label", "attack_type", "video_id", "domain", "decision")
CONVENTIONS = {
    "score": "probability of spoof; higher means attack",
    "label": "1 = spoof (attack), 0 = live (bona fide)",
    "decision": "spoof iff score >= threshold (a score equal to the threshold counts as spoof)",
    "far": "fraction of spoof samples accepted as live (= APCER pooled over attack types)",
    "frr": "fraction of live samples rejected as spoof (= BPCER)",
    "hter": "(FAR + FRR) / 2 at the reported threshold",
    "eer": "(FAR + FRR) / 2 at the unique-score threshold minimising |FAR - FRR|",
    "auc": "area under the ROC, spoof positive (the same value with live positive)",
    "tpr_at_fpr_1pct": "largest TPR of a ROC point with FPR <= 1%, for the class named in settings.positive",
    "acer": "(APCER_max + BPCER) / 2, APCER_max being the worst attack type's APCER (ISO/IEC 30107-3)",
    "rates": "fractions in [0, 1]",
}


class InputError(ValueError):
    """Unusable input. `source` says which rows (the evaluated ones or the dev ones), `index` which row
    (0-based, None when the problem is not one row's), so a caller can point at the file line."""

    def __init__(self, message: str, *, source: Source = "rows", index: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.index = index


@dataclass(frozen=True)
class ScoredSample:
    """One evaluated sample (an image, or a video after frame averaging).

    `score` is the probability of spoof in [0, 1]; a decision-only model gives `decision` instead.
    `attack_type`, `video_id` and `domain` are optional.
    """

    id: str
    label: Label
    score: float | None = None
    decision: Label | None = None
    attack_type: str | None = None
    video_id: str | None = None
    domain: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("id is empty; give every row a unique id")
        if self.label not in ("live", "spoof"):
            raise ValueError(f"label {self.label!r} is neither 'live' nor 'spoof'; write live or spoof")
        if self.decision is not None and self.decision not in ("live", "spoof"):
            raise ValueError(f"decision {self.decision!r} is neither 'live' nor 'spoof'; write live or spoof")
        if self.score is None and self.decision is None:
            raise ValueError("score is empty and there is no decision; give the probability of spoof")
        if self.score is not None:
            _check_probability(self.score)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ScoredSample:
        """From a CSV row or a dict with the CSV's column names; empty strings mean "not given"."""
        fields = {name: _given(record.get(name)) for name in CSV_COLUMNS}
        if fields["label"] is None:
            raise ValueError("label is empty; write live or spoof")
        return cls(
            id=str(fields["id"] or ""),
            label=str(fields["label"]),  # type: ignore[arg-type]  # checked in __post_init__
            score=None if fields["score"] is None else _parse_score(fields["score"]),
            decision=None if fields["decision"] is None else str(fields["decision"]),  # type: ignore[arg-type]
            attack_type=None if fields["attack_type"] is None else str(fields["attack_type"]),
            video_id=None if fields["video_id"] is None else str(fields["video_id"]),
            domain=None if fields["domain"] is None else str(fields["domain"]),
        )


def _given(value: Any) -> Any:
    """None for a missing or blank value, the stripped string for a string, the value otherwise."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _parse_score(value: Any) -> float:
    if not isinstance(value, bool):  # bool is an int: True would otherwise pass as the score 1.0
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"score {value!r} is not a number; write the probability of spoof, e.g. 0.83")


def _check_probability(score: float) -> None:
    if math.isnan(score):
        raise ValueError("score is NaN; every row needs the probability of spoof as a number")
    if not 0.0 <= score <= 1.0:
        raise ValueError(
            f"score {score} is outside [0, 1]; scores are the probability of spoof (apply a sigmoid or "
            "softmax to logits)"
        )


# ------------------------------------------------------------------------------------ loading rows


def load_samples(
    rows: Iterable[ScoredSample | Mapping[str, Any]], source: Source = "rows"
) -> list[ScoredSample]:
    """Validate rows (ScoredSample or CSV-like dicts) into samples. Raises InputError naming the row."""
    samples = []
    for index, row in enumerate(rows):
        try:
            samples.append(row if isinstance(row, ScoredSample) else ScoredSample.from_record(row))
        except ValueError as error:
            raise InputError(str(error), source=source, index=index) from None
    if not samples:
        raise InputError("no rows: empty input, nothing to evaluate", source=source)
    _check_unique_ids(samples, source)
    _check_all_or_none(samples, source, "score", "give every row a score, or none (decision-only input)")
    _check_all_or_none(samples, source, "domain", "give every row a domain, or none")
    return samples


def _check_unique_ids(samples: Sequence[ScoredSample], source: Source) -> None:
    first_row: dict[str, int] = {}
    for index, sample in enumerate(samples):
        if sample.id in first_row:
            raise InputError(
                f"id {sample.id!r} repeats row {first_row[sample.id] + 1}; ids must be unique",
                source=source,
                index=index,
            )
        first_row[sample.id] = index


def _check_all_or_none(samples: Sequence[ScoredSample], source: Source, field: str, fix: str) -> None:
    """A field given on some rows only would silently mix two kinds of evaluation."""
    given = [getattr(sample, field) is not None for sample in samples]
    if any(given) and not all(given):
        index = given.index(not given[0])
        state, other = ("empty", "has one") if given[0] else ("given", "has none")
        raise InputError(f"{field} is {state} but row 1 {other}; {fix}", source=source, index=index)


def _has_scores(samples: Sequence[ScoredSample]) -> bool:
    return samples[0].score is not None


def _has_domains(samples: Sequence[ScoredSample]) -> bool:
    return samples[0].domain is not None


# ------------------------------------------------------------------------------------- video level


def to_video_level(samples: Sequence[ScoredSample], source: Source = "rows") -> list[ScoredSample]:
    """One sample per video with the mean frame score; label, attack type and domain must agree per video."""
    if not _has_scores(samples):
        raise InputError(
            "video-level evaluation averages scores; decision-only input has none", source=source
        )
    for index, sample in enumerate(samples):
        if sample.video_id is None:
            raise InputError(
                "video_id is empty; video-level evaluation needs one on every row", source=source, index=index
            )
    video_ids = [sample.video_id for sample in samples]
    try:
        videos = metrics.average_scores_per_video(
            video_ids,  # type: ignore[arg-type]  # checked above
            [sample.score for sample in samples],
            metrics.labels_from_strings(sample.label for sample in samples),
        )
    except ValueError as error:
        raise InputError(str(error), source=source) from None
    attack_types = _one_value_per_video(samples, "attack_type", source)
    domains = _one_value_per_video(samples, "domain", source)
    return [
        ScoredSample(
            id=video,
            label="spoof" if label == metrics.SPOOF else "live",
            score=float(score),
            attack_type=attack_types[video],
            video_id=video,
            domain=domains[video],
        )
        for video, score, label in zip(videos.video_ids, videos.scores, videos.labels, strict=True)
    ]


def _one_value_per_video(
    samples: Sequence[ScoredSample], field: str, source: Source
) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for index, sample in enumerate(samples):
        value = getattr(sample, field)
        video = str(sample.video_id)
        if values.setdefault(video, value) != value:
            raise InputError(
                f"video {video!r} has frames with {field} {values[video]!r} and {value!r}; "
                f"a video has one {field}",
                source=source,
                index=index,
            )
    return values


# ----------------------------------------------------------------------------------------- report


def compute_report(
    rows: Iterable[ScoredSample | Mapping[str, Any]],
    *,
    threshold_mode: ThresholdMode = "eer",
    threshold: float = DEFAULT_THRESHOLD,
    dev_rows: Iterable[ScoredSample | Mapping[str, Any]] | None = None,
    positive: Positive = "spoof",
    video_level: bool = False,
) -> dict[str, Any]:
    """The full metrics report (a JSON-serialisable dict, what `rft metrics` writes as metrics.json).

    `rows` are ScoredSample objects or dicts keyed like the CSV columns. `threshold_mode` picks the HTER
    threshold: "eer" (each evaluated set's own EER threshold), "fixed" (`threshold`), or "dev" (the EER
    threshold of `dev_rows`, applied to every set). `positive` is the class whose TPR the TPR@FPR=1% reports.
    With `video_level`, frame scores are averaged per video first (the dev rows too).

    A decision-only input (no scores) reports FAR/FRR/HTER/accuracy/ISO rates from the decisions and
    null AUC/EER/TPR@FPR with a note. When the rows carry a domain, `domains` holds the same metrics per
    domain and `domain_average` their mean HTER, AUC and TPR@FPR (the papers' "Avg." column); `overall`
    is always the pooled set. Raises InputError for unusable input.
    """
    _check_options(threshold_mode, threshold, dev_rows, positive)
    samples = load_samples(rows, "rows")
    dev_samples = None if dev_rows is None else load_samples(dev_rows, "dev_rows")
    if video_level:
        samples = to_video_level(samples, "rows")
        dev_samples = None if dev_samples is None else to_video_level(dev_samples, "dev_rows")
    scored = _has_scores(samples)
    if not scored and threshold_mode == "dev":
        raise InputError("threshold mode 'dev' needs scores; decision-only input has none")
    shared_threshold = _shared_threshold(threshold_mode, threshold, dev_samples) if scored else None

    report: dict[str, Any] = {
        "settings": {
            "threshold_mode": threshold_mode if scored else "decision",
            "threshold": shared_threshold,
            "positive": positive,
            "max_fpr": MAX_FPR,
            "level": "video" if video_level else "frame",
            "input": "score" if scored else "decision",
        },
        "conventions": CONVENTIONS,
        "overall": _metrics_block(samples, shared_threshold, positive, "the evaluated set"),
    }
    if _has_domains(samples):
        report["domains"] = {
            domain: _metrics_block(members, shared_threshold, positive, f"domain {domain!r}")
            for domain, members in _by_domain(samples).items()
        }
        report["domain_average"] = _domain_average(report["domains"])
    report["notes"] = _notes(samples, threshold_mode, scored)
    return report


def _check_options(threshold_mode: str, threshold: float, dev_rows: object | None, positive: str) -> None:
    if threshold_mode not in get_args(ThresholdMode):
        raise InputError(f"threshold mode {threshold_mode!r} is not one of eer, fixed, dev")
    if positive not in get_args(Positive):
        raise InputError(f"positive {positive!r} is not one of spoof, live")
    if threshold_mode == "dev" and dev_rows is None:
        raise InputError("threshold mode 'dev' needs the dev rows (--dev DEV.csv)")
    if threshold_mode != "dev" and dev_rows is not None:
        raise InputError(f"dev rows are only used by threshold mode 'dev', not {threshold_mode!r}")
    if threshold_mode == "fixed" and not math.isfinite(threshold):
        raise InputError(f"fixed threshold {threshold} is not a finite number")


def _shared_threshold(
    threshold_mode: ThresholdMode, threshold: float, dev_samples: Sequence[ScoredSample] | None
) -> float | None:
    """The one threshold of modes fixed and dev; None in mode eer, where each set has its own."""
    if threshold_mode == "fixed":
        return float(threshold)
    if threshold_mode == "eer":
        return None
    assert dev_samples is not None  # _check_options required them
    if not _has_scores(dev_samples):
        raise InputError(
            "the dev set has no scores; the dev threshold is the EER threshold of dev scores",
            source="dev_rows",
        )
    _check_both_classes(dev_samples, "the dev set", "dev_rows")
    return metrics.eer_point(*_arrays(dev_samples)).threshold


def _arrays(samples: Sequence[ScoredSample]) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray([sample.score for sample in samples], dtype=np.float64)
    return scores, metrics.labels_from_strings(sample.label for sample in samples)


def _by_domain(samples: Sequence[ScoredSample]) -> dict[str, list[ScoredSample]]:
    groups: dict[str, list[ScoredSample]] = {}
    for sample in samples:
        groups.setdefault(str(sample.domain), []).append(sample)
    return dict(sorted(groups.items()))


def _check_both_classes(samples: Sequence[ScoredSample], where: str, source: Source = "rows") -> None:
    n_spoof = sum(sample.label == "spoof" for sample in samples)
    if n_spoof in (0, len(samples)):
        only = "live" if n_spoof == 0 else "spoof"
        raise InputError(
            f"{where} has only {only} samples ({len(samples)}); FAR, FRR, EER and AUC need both live and "
            "spoof samples, so evaluate on a set that has both",
            source=source,
        )


def _metrics_block(
    samples: Sequence[ScoredSample], threshold: float | None, positive: Positive, where: str
) -> dict[str, Any]:
    """Every metric of one set (`where` names it in errors); `threshold` None means the set's own EER
    threshold, or the decisions of decision-only input."""
    _check_both_classes(samples, where)
    labels = metrics.labels_from_strings(sample.label for sample in samples)
    attack_types = [sample.attack_type or UNSPECIFIED_ATTACK for sample in samples]
    if _has_scores(samples):
        scores, _ = _arrays(samples)
        point = metrics.eer_point(scores, labels)
        threshold = point.threshold if threshold is None else threshold
        predictions = metrics.predict_spoof(scores, threshold)
        score_metrics: dict[str, Any] = {
            "eer": point.eer,
            "eer_threshold": point.threshold,
            "auc": metrics.auc(scores, labels),
            "tpr_at_fpr_1pct": metrics.tpr_at_fpr(scores, labels, MAX_FPR, positive),
        }
    else:
        scores = None
        predictions = metrics.labels_from_strings(str(sample.decision) for sample in samples)
        score_metrics = {"eer": None, "eer_threshold": None, "auc": None, "tpr_at_fpr_1pct": None}
        score_metrics["note"] = metrics.NO_SCORE_NOTE
    rates = metrics.error_rates(predictions, labels)
    iso = metrics.iso_30107_3(predictions, labels, attack_types)
    breakdown = metrics.attack_breakdown(predictions, labels, attack_types, scores)
    return {
        "n_samples": int(labels.size),
        "n_live": int((labels == metrics.LIVE).sum()),
        "n_spoof": int((labels == metrics.SPOOF).sum()),
        "threshold": threshold,
        "far": rates.far,
        "frr": rates.frr,
        "hter": rates.hter,
        "accuracy": rates.accuracy,
        **score_metrics,
        "apcer_max": iso.apcer_max,
        "worst_attack": iso.worst_attack,
        "bpcer": iso.bpcer,
        "acer": iso.acer,
        "attack_types": {
            attack: {"count": stats.count, "apcer": stats.apcer, "auc": stats.auc}
            for attack, stats in breakdown.items()
        },
    }


def _domain_average(domains: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Mean over domains, each domain weighted equally whatever its size (the papers' "Avg.")."""

    def mean(key: str) -> float | None:
        values = [block[key] for block in domains.values()]
        return None if None in values else float(np.mean(values))

    return {
        "n_domains": len(domains),
        "hter": mean("hter"),
        "auc": mean("auc"),
        "tpr_at_fpr_1pct": mean("tpr_at_fpr_1pct"),
    }


def _notes(samples: Sequence[ScoredSample], threshold_mode: ThresholdMode, scored: bool) -> list[str]:
    notes = []
    if not scored:
        notes.append(metrics.NO_SCORE_NOTE)
    elif threshold_mode == "eer":
        notes.append(
            "HTER is at each set's own EER threshold (it uses the test labels, as SSDG / FLIP report it), "
            "so it equals that set's EER"
        )
    if scored and any(sample.decision is not None for sample in samples):
        notes.append("the decision column is ignored: the scores decide, at the threshold")
    unspecified = sum(sample.label == "spoof" and sample.attack_type is None for sample in samples)
    if unspecified:
        notes.append(
            f"spoof samples without attack_type ({unspecified}) are counted as {UNSPECIFIED_ATTACK!r}"
        )
    return notes


# -------------------------------------------------------------------------------------- ROC plot


def roc_curves(
    rows: Iterable[ScoredSample | Mapping[str, Any]], positive: Positive = "spoof", video_level: bool = False
) -> dict[str, metrics.RocCurve]:
    """ROC of the pooled set ("overall") and of each domain; empty for decision-only input."""
    samples = load_samples(rows)
    if not _has_scores(samples):
        return {}
    if video_level:
        samples = to_video_level(samples)
    groups = {"overall": samples}
    if _has_domains(samples):
        groups.update(_by_domain(samples))
    return {name: metrics.roc_curve(*_arrays(members), positive=positive) for name, members in groups.items()}


def write_roc_plot(curves: Mapping[str, metrics.RocCurve], report: Mapping[str, Any], path: Path) -> None:
    """One ROC line per set, its AUC in the legend and a dot at the reported threshold's operating point."""
    # Imported here so that compute_report (called in the trainer's process) does not load matplotlib.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positive = report["settings"]["positive"]
    blocks = {"overall": report["overall"], **report.get("domains", {})}
    figure, axes = plt.subplots(figsize=(5.5, 5))
    for name, curve in curves.items():
        block = blocks[name]
        line = axes.plot(curve.fpr, curve.tpr, label=f"{name} (AUC {100 * block['auc']:.2f}%)")[0]
        fpr, tpr = (
            (block["frr"], 1 - block["far"]) if positive == "spoof" else (block["far"], 1 - block["frr"])
        )
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
    plt.close(figure)


# -------------------------------------------------------------------------------------- markdown


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def _threshold_text(value: float | None) -> str:
    return "decisions" if value is None else f"{value:.4g}"


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
        f"| set | n (live/spoof) | threshold | HTER | AUC | EER | TPR@FPR=1% ({positive}) | FAR | FRR "
        "| accuracy | APCER_max | BPCER | ACER |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    blocks = {"overall": report["overall"], **report.get("domains", {})}
    for name, block in blocks.items():
        cells = [
            name,
            f"{block['n_samples']} ({block['n_live']}/{block['n_spoof']})",
            _threshold_text(block["threshold"]),
            *(
                _percent(block[key])
                for key in ("hter", "auc", "eer", "tpr_at_fpr_1pct", "far", "frr", "accuracy")
            ),
            f"{_percent(block['apcer_max'])} ({block['worst_attack']})",
            _percent(block["bpcer"]),
            _percent(block["acer"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if "domain_average" in report:
        average = report["domain_average"]
        cells = [
            f"Avg. ({average['n_domains']} domains)",
            "",
            "",
            _percent(average["hter"]),
            _percent(average["auc"]),
        ]
        cells += ["", _percent(average["tpr_at_fpr_1pct"]), "", "", "", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Per attack type (overall)",
        "",
        "| attack type | count | APCER | AUC vs all live |",
        "|---|---|---|---|",
    ]
    for attack, stats in report["overall"]["attack_types"].items():
        lines.append(
            f"| {attack} | {stats['count']} | {_percent(stats['apcer'])} | {_percent(stats['auc'])} |"
        )
    notes = list(report["notes"])
    if settings["input"] == "decision":
        notes.append("no ROC plot (roc.png): decision-only input has no scores to sweep a threshold over")
    if notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- CSV


class CsvError(Exception):
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


def _located(error: InputError, files: Mapping[Source, tuple[Path | None, list[int]]]) -> str:
    path, lines = files[error.source]
    if error.index is None:
        return f"{path}: {error}"
    return f"{path} line {lines[error.index]} (row {error.index + 1}): {error}"


# ---------------------------------------------------------------------------------------- writing


def write_outputs(out_dir: Path, report: Mapping[str, Any], curves: Mapping[str, metrics.RocCurve]) -> None:
    """Write metrics.json, metrics.md and roc.png via a temporary folder, then rename them into `out_dir`,
    so a failure leaves no half-written file. A stale roc.png is removed when there is no plot to show."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".metrics-") as staging:
        staged = Path(staging)
        (staged / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        (staged / "metrics.md").write_text(render_markdown(report))
        if curves:
            write_roc_plot(curves, report, staged / "roc.png")
        for name in ("metrics.json", "metrics.md", "roc.png"):
            if (staged / name).exists():
                os.replace(staged / name, out_dir / name)
    if not curves:
        (out_dir / "roc.png").unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------- command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rft metrics",
        description="Face anti-spoofing metrics (HTER, AUC, EER, TPR@FPR=1%, ISO/IEC 30107-3 "
        "APCER/BPCER/ACER, per attack type and per domain) of a scores CSV. Writes DIR/metrics.json, "
        "DIR/metrics.md and DIR/roc.png.",
        epilog="CSV columns: id,score,label[,attack_type,video_id,domain,decision]. score = probability "
        "of spoof in [0, 1]; label = live or spoof; leave score empty and give decision (live/spoof) for a "
        "model without scores. With a domain column, each domain is reported and HTER/AUC are averaged over "
        "domains. Conventions: docs/METRICS.md.",
    )
    parser.add_argument("scores", type=Path, metavar="SCORES.csv", help="per-sample scores to evaluate")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="output folder (created if needed)"
    )
    parser.add_argument(
        "--threshold-mode",
        choices=get_args(ThresholdMode),
        default="eer",
        help="HTER threshold: eer = each set's own EER threshold (SSDG/FLIP tables, default); fixed = "
        "--threshold; dev = the EER threshold of --dev, applied unchanged",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"the threshold of --threshold-mode fixed (default {DEFAULT_THRESHOLD}); spoof iff score >= it",
    )
    parser.add_argument(
        "--dev", type=Path, metavar="DEV.csv", help="development-set scores for --threshold-mode dev"
    )
    parser.add_argument(
        "--positive",
        choices=get_args(Positive),
        default="spoof",
        help="class whose TPR is reported at FPR=1%% and on the ROC plot (default spoof)",
    )
    parser.add_argument(
        "--video-level",
        action="store_true",
        help="average frame scores per video_id before computing metrics",
    )
    return parser


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.threshold is not None and args.threshold_mode != "fixed":
        parser.error("--threshold is only used with --threshold-mode fixed")
    if (args.dev is not None) != (args.threshold_mode == "dev"):
        parser.error("--dev DEV.csv and --threshold-mode dev go together")
    if args.threshold is not None and not math.isfinite(args.threshold):
        parser.error(f"--threshold {args.threshold} is not a finite number")
    return args


def _fail(message: str) -> int:
    print(f"rft metrics: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        rows, lines = read_scores_csv(args.scores)
        dev_rows, dev_lines = read_scores_csv(args.dev) if args.dev is not None else (None, [])
    except CsvError as error:
        return _fail(str(error))
    files: dict[Source, tuple[Path | None, list[int]]] = {
        "rows": (args.scores, lines),
        "dev_rows": (args.dev, dev_lines),
    }
    try:
        samples = load_samples(rows, "rows")
        report = compute_report(
            samples,
            threshold_mode=args.threshold_mode,
            threshold=DEFAULT_THRESHOLD if args.threshold is None else args.threshold,
            dev_rows=None if dev_rows is None else load_samples(dev_rows, "dev_rows"),
            positive=args.positive,
            video_level=args.video_level,
        )
        curves = roc_curves(samples, args.positive, args.video_level)
    except InputError as error:
        return _fail(_located(error, files))
    write_outputs(args.out, report, curves)
    overall = report["overall"]
    print(
        f"HTER {_percent(overall['hter'])}, AUC {_percent(overall['auc'])}, "
        f"EER {_percent(overall['eer'])} (%) on {overall['n_samples']} {report['settings']['level']}s "
        f"-> {args.out}/metrics.json, metrics.md" + (", roc.png" if curves else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The face anti-spoofing metrics report of scored samples: `compute_report` (HTER / AUC / EER / TPR@FPR /
ISO 30107-3, overall, per domain and per attack type) and `roc_curves`.

Numbers only: the trainer's evaluation calls this in its own process, so it loads neither the rendering
(`rft.eval.render`, matplotlib) nor the command (`rft.eval.metrics_cli`, which writes the report as
DIR/metrics.json). Conventions are in docs/METRICS.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

import numpy as np

from rft.eval import metrics
from rft.eval.metrics import DEFAULT_THRESHOLD, Positive, ThresholdMode
from rft.eval.scored_samples import (
    InputError,
    ScoredSample,
    Source,
    has_domains,
    has_scores,
    load_samples,
    to_video_level,
)

UNSPECIFIED_ATTACK = "unspecified"
MAX_FPR = 0.01
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
    scored = has_scores(samples)
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
    if has_domains(samples):
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
    if not has_scores(dev_samples):
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
    if has_scores(samples):
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


def roc_curves(
    rows: Iterable[ScoredSample | Mapping[str, Any]], positive: Positive = "spoof", video_level: bool = False
) -> dict[str, metrics.RocCurve]:
    """ROC of the pooled set ("overall") and of each domain; empty for decision-only input."""
    samples = load_samples(rows)
    if not has_scores(samples):
        return {}
    if video_level:
        samples = to_video_level(samples)
    groups = {"overall": samples}
    if has_domains(samples):
        groups.update(_by_domain(samples))
    return {name: metrics.roc_curve(*_arrays(members), positive=positive) for name, members in groups.items()}

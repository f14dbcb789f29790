"""How good an expert is: accuracy at the fixed 0.5 threshold (paper 003, Appendix A.3 and Figure S7), AUC,
and both per attack type and per domain ("each shows distinctive sensitivity to certain spoof types")."""

from __future__ import annotations

import math

import numpy as np

from rft.eval.metrics import auc
from rft.experts.data import ToolPictures

THRESHOLD = 0.5  # Appendix A.3: "We evaluate each expert model using a fixed threshold of 0.5"
# Attack types each tool is expected to expose on the synthetic benchmark: the pairs that
# tests/data/test_synth_detection.py shows to be separable with the same family of features (spectrum ->
# replay, local binary patterns -> print), in line with paper 003, section 3.1.1. The acceptance of issue #7
# asks these experts for AUC >= 0.9 there; every other (tool, attack) pair is reported, not required.
TARGET_ATTACKS: dict[str, tuple[str, ...]] = {"FFTTool": ("replay",), "LBPTool": ("print",)}
TARGET_AUC = 0.9
# One-sided 95% bound for "better than chance" (Hanley & McNeil 1982 standard error of the AUC).
CHANCE_Z = 1.645


def hanley_mcneil_se(area: float, positives: int, negatives: int) -> float:
    """Standard error of an AUC estimated from `positives` x `negatives` pairs (Hanley & McNeil 1982)."""
    q1, q2 = area / (2 - area), 2 * area**2 / (1 + area)
    variance = (area * (1 - area) + (positives - 1) * (q1 - area**2) + (negatives - 1) * (q2 - area**2)) / (
        positives * negatives
    )
    return math.sqrt(max(variance, 0.0))


def _auc_or_none(scores: np.ndarray, labels: np.ndarray) -> float | None:
    return auc(scores, labels) if len(set(labels.tolist())) == 2 else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _overall(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    predictions = (probabilities >= THRESHOLD).astype(int)
    area = _auc_or_none(probabilities, labels)
    positives, negatives = int(labels.sum()), int(len(labels) - labels.sum())
    lower = None
    if area is not None:
        lower = area - CHANCE_Z * hanley_mcneil_se(area, positives, negatives)
    return {
        "n": len(labels),
        "n_spoof": positives,
        "n_live": negatives,
        "accuracy": _rounded((predictions == labels).mean()),
        "auc": _rounded(area),
        "auc_lower_95": _rounded(lower),
        "beats_chance": bool(lower is not None and lower > 0.5),
    }


def _per_attack(probabilities: np.ndarray, pictures: ToolPictures) -> dict:
    """For each attack type: the share of its images called spoof, and the AUC of those images against the
    live images of the domains where that attack occurs (so a domain shift is not scored as detection)."""
    report = {}
    is_live = pictures.labels == 0
    for attack in sorted(set(pictures.spoof_types[~is_live].tolist())):
        mine = pictures.spoof_types == attack
        domains = sorted(set(pictures.domains[mine].tolist()))
        live_there = is_live & np.isin(pictures.domains, domains)
        chosen = mine | live_there
        report[attack] = {
            "n": int(mine.sum()),
            "domains": domains,
            "accuracy": _rounded((probabilities[mine] >= THRESHOLD).mean()),
            "auc_vs_live": _rounded(_auc_or_none(probabilities[chosen], pictures.labels[chosen])),
        }
        if len(domains) > 1:
            report[attack]["auc_vs_live_by_domain"] = {
                domain: _rounded(_auc_or_none(probabilities[in_domain], pictures.labels[in_domain]))
                for domain in domains
                for in_domain in [chosen & (pictures.domains == domain)]
            }
    return report


def _per_domain(probabilities: np.ndarray, pictures: ToolPictures) -> dict:
    report = {}
    for domain in sorted(set(pictures.domains.tolist())):
        mine = pictures.domains == domain
        labels = pictures.labels[mine]
        live = mine & (pictures.labels == 0)
        report[domain] = {
            "n": int(mine.sum()),
            "accuracy": _rounded(((probabilities[mine] >= THRESHOLD) == labels).mean()),
            "live_accuracy": _rounded((probabilities[live] < THRESHOLD).mean()) if live.any() else None,
            "auc": _rounded(_auc_or_none(probabilities[mine], labels)),
        }
    return report


def expert_report(probabilities: np.ndarray, pictures: ToolPictures) -> dict:
    """Overall, live, per-attack and per-domain figures of one expert's probabilities on `pictures`."""
    if len(probabilities) != len(pictures):
        raise ValueError(f"{len(probabilities)} probabilities for {len(pictures)} pictures")
    live = pictures.labels == 0
    return {
        "overall": _overall(probabilities, pictures.labels),
        "live": {
            "n": int(live.sum()),
            "accuracy": _rounded((probabilities[live] < THRESHOLD).mean()) if live.any() else None,
        },
        "per_attack": _per_attack(probabilities, pictures),
        "per_domain": _per_domain(probabilities, pictures),
    }


def acceptance(reports: dict[str, dict]) -> dict:
    """Issue #7's acceptance on the figures of `reports` (tool -> expert_report): every expert beats chance,
    and the target (tool, attack) pairs reach TARGET_AUC."""
    targets = {}
    for tool, attacks in TARGET_ATTACKS.items():
        if tool not in reports:
            continue
        per_attack = reports[tool]["per_attack"]
        targets[tool] = {attack: per_attack.get(attack, {}).get("auc_vs_live") for attack in attacks}
    beats_chance = {tool: report["overall"]["beats_chance"] for tool, report in reports.items()}
    targets_met = all(
        value is not None and value >= TARGET_AUC for pairs in targets.values() for value in pairs.values()
    )
    return {
        "every_expert_beats_chance": all(beats_chance.values()),
        "beats_chance": beats_chance,
        "target_auc": TARGET_AUC,
        "targets": targets,
        "targets_met": targets_met,
        "passed": all(beats_chance.values()) and targets_met,
    }

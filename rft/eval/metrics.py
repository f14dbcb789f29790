"""The face anti-spoofing metrics the papers report, as pure functions over NumPy arrays.

Conventions, used by every function here (docs/METRICS.md states them at length):

* `scores` are the probability of spoof: higher means "more likely an attack".
* `labels` are integers, 1 = spoof (attack), 0 = live (bona fide). `labels_from_strings` converts
  'live' / 'spoof'.
* A score becomes a decision by `predict_spoof`: spoof iff `score >= threshold`, so a score equal to the
  threshold counts as spoof.
* `predictions` / `decisions` are 0/1 arrays in the label convention (1 = classified as spoof). Every
  threshold-dependent metric takes them, so a decision-only model (a parsed answer, no score) and a
  thresholded score go through the same code.
* FAR = fraction of spoof samples accepted as live; FRR = fraction of live samples rejected as spoof;
  HTER = (FAR + FRR) / 2. In ISO/IEC 30107-3 terms FAR is the pooled APCER and FRR is BPCER.
* Rates are fractions in [0, 1], not percentages.

Degenerate input (no samples, one class only, NaN or infinite scores, labels other than 0/1) raises a
ValueError that names the problem: a metric of such input would be a number that means nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

LIVE = 0
SPOOF = 1
LABEL_NAMES = {"live": LIVE, "spoof": SPOOF}

Positive = Literal["spoof", "live"]
ThresholdMode = Literal["eer", "fixed", "dev"]

DEFAULT_THRESHOLD = 0.5
NO_SCORE_NOTE = (
    "decision-only model (a parsed answer, no score): AUC, EER and TPR@FPR need a score to rank samples "
    "by, so they are not reported"
)


# --------------------------------------------------------------------------------------------- inputs


def labels_from_strings(values: Iterable[str]) -> npt.NDArray[np.int64]:
    """'live' -> 0, 'spoof' -> 1 (exact lower-case names). Anything else raises ValueError with its index."""
    labels = []
    for index, value in enumerate(values):
        if value not in LABEL_NAMES:
            raise ValueError(f"label {value!r} at index {index} is neither 'live' nor 'spoof'")
        labels.append(LABEL_NAMES[value])
    return np.asarray(labels, dtype=np.int64)


def _binary_array(values: npt.ArrayLike, name: str) -> npt.NDArray[np.int64]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"empty input: no {name} to evaluate")
    if array.dtype.kind in "USO":
        raise ValueError(
            f"{name} must be 0 (live) / 1 (spoof); convert 'live'/'spoof' with labels_from_strings"
        )
    outside = np.flatnonzero(~np.isin(array, (LIVE, SPOOF)))
    if outside.size:
        raise ValueError(
            f"{name} must be 0 (live) or 1 (spoof); got {array[outside[0]].item()!r} at index {outside[0]}"
        )
    return array.astype(np.int64)


def _score_array(values: npt.ArrayLike, expected_size: int) -> npt.NDArray[np.float64]:
    scores = np.asarray(values, dtype=np.float64)
    if scores.shape != (expected_size,):
        raise ValueError(f"scores have shape {scores.shape} but there are {expected_size} labels")
    not_finite = np.flatnonzero(~np.isfinite(scores))
    if not_finite.size:
        raise ValueError(f"score at index {not_finite[0]} is {scores[not_finite[0]]}; scores must be finite")
    return scores


def _require_both_classes(labels: npt.NDArray[np.int64]) -> None:
    n_spoof = int(labels.sum())
    if n_spoof == 0:
        raise ValueError(f"only live samples ({labels.size}), no spoof: these metrics need both classes")
    if n_spoof == labels.size:
        raise ValueError(f"only spoof samples ({labels.size}), no live: these metrics need both classes")


def _labels(labels: npt.ArrayLike) -> npt.NDArray[np.int64]:
    checked = _binary_array(labels, "labels")
    _require_both_classes(checked)
    return checked


def _scores_and_labels(
    scores: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    checked_labels = _labels(labels)
    return _score_array(scores, checked_labels.size), checked_labels


def _predictions_and_labels(
    predictions: npt.ArrayLike, labels: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    checked_labels = _labels(labels)
    checked_predictions = _binary_array(predictions, "predictions")
    if checked_predictions.size != checked_labels.size:
        raise ValueError(f"{checked_predictions.size} predictions but {checked_labels.size} labels")
    return checked_predictions, checked_labels


# ------------------------------------------------------------------------------ decisions and rates


def predict_spoof(scores: npt.ArrayLike, threshold: float) -> npt.NDArray[np.int64]:
    """1 (spoof) where `score >= threshold`, else 0 (live). A score equal to the threshold counts as spoof."""
    checked = np.asarray(scores, dtype=np.float64)
    if np.isnan(checked).any() or np.isnan(threshold):
        raise ValueError("cannot threshold NaN: scores and threshold must be numbers")
    return (checked >= threshold).astype(np.int64)


def far(predictions: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """False acceptance rate: the fraction of spoof samples predicted live (0)."""
    predictions, labels = _predictions_and_labels(predictions, labels)
    return float(np.mean(predictions[labels == SPOOF] == LIVE))


def frr(predictions: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """False rejection rate: the fraction of live samples predicted spoof (1). Equals ISO BPCER."""
    predictions, labels = _predictions_and_labels(predictions, labels)
    return float(np.mean(predictions[labels == LIVE] == SPOOF))


def hter(predictions: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Half total error rate (FAR + FRR) / 2 of 0/1 predictions (threshold scores with `predict_spoof`)."""
    return (far(predictions, labels) + frr(predictions, labels)) / 2


def accuracy(predictions: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Fraction of samples whose prediction equals the label (not class-balanced, unlike 1 - HTER)."""
    predictions, labels = _predictions_and_labels(predictions, labels)
    return float(np.mean(predictions == labels))


@dataclass(frozen=True)
class ErrorRates:
    far: float
    frr: float
    hter: float
    accuracy: float


def error_rates(predictions: npt.ArrayLike, labels: npt.ArrayLike) -> ErrorRates:
    """FAR, FRR, HTER and accuracy of 0/1 predictions, together."""
    return ErrorRates(
        far=far(predictions, labels),
        frr=frr(predictions, labels),
        hter=hter(predictions, labels),
        accuracy=accuracy(predictions, labels),
    )


def decision_only_metrics(decisions: npt.ArrayLike, labels: npt.ArrayLike) -> dict[str, float | str | None]:
    """Metrics of a model that answers live/spoof without a score.

    FAR, FRR, HTER and accuracy come from the decisions (0/1, 1 = spoof). AUC, EER and TPR@FPR are None
    (JSON null) with `note` saying why: they rank samples by score, and a decision has no ranking; any
    number there (e.g. the AUC of the 0/1 decisions) would describe a different quantity.
    """
    rates = error_rates(decisions, labels)
    return {
        "far": rates.far,
        "frr": rates.frr,
        "hter": rates.hter,
        "accuracy": rates.accuracy,
        "auc": None,
        "eer": None,
        "tpr_at_fpr": None,
        "note": NO_SCORE_NOTE,
    }


# ------------------------------------------------------------------------------------------- EER


@dataclass(frozen=True)
class EerPoint:
    """The operating point where FAR and FRR are closest; `eer` = (far + frr) / 2 there."""

    threshold: float
    far: float
    frr: float
    eer: float


def eer_point(scores: npt.ArrayLike, labels: npt.ArrayLike) -> EerPoint:
    """The equal error rate operating point, chosen among the sorted unique scores as thresholds.

    Each unique score t is a candidate threshold (spoof iff score >= t); together they realise every
    distinct split of the samples except "everything live", which is never closer to equal error than
    "everything spoof" (t = the lowest score). The chosen t minimises |FAR - FRR|. FAR - FRR strictly
    increases from one candidate to the next, so there are no plateaus, and at most two candidates tie:
    the two either side of the crossing. The tie goes to the lower (FAR + FRR) / 2, then the lower
    threshold. The comparisons use integer counts, so ties are exact, not subject to rounding.

    The EER reported is (FAR + FRR) / 2 at that threshold (the SSDG / FLIP convention; no interpolation
    between operating points), so the HTER at a set's own EER threshold equals its EER by construction.
    The threshold is one of the given scores, which is what a dev-set threshold transfers to a test set.
    """
    scores, labels = _scores_and_labels(scores, labels)
    candidates = np.unique(scores)
    live_sorted = np.sort(scores[labels == LIVE])
    spoof_sorted = np.sort(scores[labels == SPOOF])
    n_live, n_spoof = live_sorted.size, spoof_sorted.size
    spoof_accepted = np.searchsorted(spoof_sorted, candidates, side="left")  # spoof with score < t
    live_rejected = n_live - np.searchsorted(live_sorted, candidates, side="left")  # live with score >= t
    # FAR = spoof_accepted / n_spoof and FRR = live_rejected / n_live; scaled by n_live * n_spoof both
    # the gap and the sum are integers.
    gap = np.abs(spoof_accepted * n_live - live_rejected * n_spoof)
    total = spoof_accepted * n_live + live_rejected * n_spoof
    best = int(np.lexsort((candidates, total, gap))[0])
    point_far = float(spoof_accepted[best] / n_spoof)
    point_frr = float(live_rejected[best] / n_live)
    return EerPoint(
        threshold=float(candidates[best]), far=point_far, frr=point_frr, eer=(point_far + point_frr) / 2
    )


def eer(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Equal error rate: (FAR + FRR) / 2 at `eer_point`'s threshold."""
    return eer_point(scores, labels).eer


def choose_threshold(
    mode: ThresholdMode,
    scores: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    fixed_threshold: float = DEFAULT_THRESHOLD,
    dev_scores: npt.ArrayLike | None = None,
    dev_labels: npt.ArrayLike | None = None,
) -> float:
    """The threshold the HTER is reported at, in one of the three conventions of the literature.

    * "eer": the EER threshold of the evaluated set itself (SSDG / FLIP / InstructFLIP cross-domain
      tables). It looks at the test labels, so it is optimistic; the HTER there equals the set's EER.
    * "fixed": `fixed_threshold` (0.5 by default: the decision of a calibrated probability).
    * "dev": the EER threshold of a development set (`dev_scores`, `dev_labels`), applied unchanged to the
      evaluated set (OULU-NPU / ISO practice: no test label is used).
    """
    if mode == "eer":
        return eer_point(scores, labels).threshold
    if mode == "fixed":
        if not np.isfinite(fixed_threshold):
            raise ValueError(f"fixed threshold must be a finite number, got {fixed_threshold}")
        return float(fixed_threshold)
    if mode == "dev":
        if dev_scores is None or dev_labels is None:
            raise ValueError("threshold mode 'dev' needs dev_scores and dev_labels")
        return eer_point(dev_scores, dev_labels).threshold
    raise ValueError(f"unknown threshold mode {mode!r}; use 'eer', 'fixed' or 'dev'")


# ------------------------------------------------------------------------------------- ROC and AUC


@dataclass(frozen=True)
class RocCurve:
    """ROC operating points from (0, 0) to (1, 1), one per unique score plus the origin.

    For positive='spoof', point k flags spoof iff score >= thresholds[k]; for positive='live', point k
    accepts live iff score <= thresholds[k]. thresholds[0] is +inf / -inf: nothing flagged positive.
    """

    positive: Positive
    fpr: npt.NDArray[np.float64]
    tpr: npt.NDArray[np.float64]
    thresholds: npt.NDArray[np.float64]


def roc_curve(scores: npt.ArrayLike, labels: npt.ArrayLike, positive: Positive = "spoof") -> RocCurve:
    """Every ROC operating point (none dropped), with `positive` the class whose detection is the TPR.

    positive='spoof': TPR = detected spoof (1 - FAR), FPR = rejected live (FRR).
    positive='live': TPR = accepted live (1 - FRR), FPR = accepted spoof (FAR).
    Same points as sklearn.metrics.roc_curve(drop_intermediate=False) with that class as pos_label
    (for 'live', on the negated score).
    """
    scores, labels = _scores_and_labels(scores, labels)
    if positive not in ("spoof", "live"):
        raise ValueError(f"positive must be 'spoof' or 'live', got {positive!r}")
    # Ranking by -score for 'live' is exact, where 1 - score could merge scores that differ in the
    # last bits.
    positive_score = scores if positive == "spoof" else -scores
    is_positive = labels == (SPOOF if positive == "spoof" else LIVE)
    order = np.argsort(-positive_score, kind="stable")
    ranked_scores, ranked_positive = positive_score[order], is_positive[order]
    # Each unique score closes a group of tied samples; the curve moves once per group.
    group_ends = np.r_[np.flatnonzero(np.diff(ranked_scores)), ranked_scores.size - 1]
    true_positives = np.cumsum(ranked_positive)[group_ends]
    false_positives = group_ends + 1 - true_positives
    tpr = np.r_[0.0, true_positives / is_positive.sum()]
    fpr = np.r_[0.0, false_positives / (~is_positive).sum()]
    thresholds = np.r_[np.inf, ranked_scores[group_ends]]
    return RocCurve(
        positive=positive, fpr=fpr, tpr=tpr, thresholds=thresholds * (1 if positive == "spoof" else -1)
    )


def auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC with spoof as the positive class (= sklearn roc_auc_score(labels, scores)).

    It is the probability that a random spoof sample scores higher than a random live one, ties counting
    one half, and so the same number with live as the positive class.
    """
    curve = roc_curve(scores, labels, positive="spoof")
    return float(np.trapezoid(curve.tpr, curve.fpr))


def tpr_at_fpr(
    scores: npt.ArrayLike, labels: npt.ArrayLike, max_fpr: float = 0.01, positive: Positive = "spoof"
) -> float:
    """The largest TPR among the ROC operating points whose FPR <= `max_fpr` (no interpolation).

    `positive` says which class is detected; the literature uses both ("TPR@FPR=1%" with spoof positive in
    FLIP-style tables, live positive in some others), so it is not defaulted silently in reports.
    The origin (nothing flagged) is always eligible, so the result is 0.0 when no threshold reaches the
    FPR bound with any detection.
    """
    if not 0 <= max_fpr <= 1:
        raise ValueError(f"max_fpr must be in [0, 1], got {max_fpr}")
    curve = roc_curve(scores, labels, positive=positive)
    return float(curve.tpr[curve.fpr <= max_fpr].max())


# ------------------------------------------------------------------------------- ISO/IEC 30107-3


def _spoof_attack_types(
    labels: npt.NDArray[np.int64], attack_types: Sequence[str | None]
) -> npt.NDArray[np.str_]:
    if len(attack_types) != labels.size:
        raise ValueError(f"{len(attack_types)} attack types but {labels.size} labels")
    spoof_types = [attack_types[i] for i in np.flatnonzero(labels == SPOOF)]
    for index, attack in zip(np.flatnonzero(labels == SPOOF), spoof_types, strict=True):
        if not isinstance(attack, str) or not attack:
            raise ValueError(f"spoof sample at index {index} has no attack type (got {attack!r})")
    return np.asarray(spoof_types, dtype=str)


def apcer_per_attack(
    predictions: npt.ArrayLike, labels: npt.ArrayLike, attack_types: Sequence[str | None]
) -> dict[str, float]:
    """ISO/IEC 30107-3 APCER of each attack type (PAI species): the fraction of its presentations predicted
    bona fide (live). Keys sorted by name. The attack type of live samples is ignored (may be None)."""
    predictions, labels = _predictions_and_labels(predictions, labels)
    spoof_types = _spoof_attack_types(labels, attack_types)
    spoof_accepted = predictions[labels == SPOOF] == LIVE
    return {
        str(attack): float(np.mean(spoof_accepted[spoof_types == attack]))
        for attack in np.unique(spoof_types)
    }


@dataclass(frozen=True)
class IsoMetrics:
    """ISO/IEC 30107-3 rates. `worst_attack` is the attack type with the highest APCER (first by name on
    ties); `acer` = (apcer_max + bpcer) / 2."""

    apcer_per_attack: dict[str, float]
    apcer_max: float
    worst_attack: str
    bpcer: float
    acer: float


def iso_30107_3(
    predictions: npt.ArrayLike, labels: npt.ArrayLike, attack_types: Sequence[str | None]
) -> IsoMetrics:
    """APCER per attack type, APCER_max, BPCER and ACER.

    ACER uses the maximum APCER over attack types (the standard's "worst PAI species", as in the OULU-NPU
    protocols), not the APCER pooled over all attacks (that one is FAR). BPCER is the fraction of bona
    fide (live) presentations predicted as attack, i.e. FRR.
    """
    per_attack = apcer_per_attack(predictions, labels, attack_types)
    worst_attack = max(per_attack, key=lambda attack: per_attack[attack])  # first maximum in name order
    apcer_max = per_attack[worst_attack]
    bpcer = frr(predictions, labels)
    return IsoMetrics(
        apcer_per_attack=per_attack,
        apcer_max=apcer_max,
        worst_attack=worst_attack,
        bpcer=bpcer,
        acer=(apcer_max + bpcer) / 2,
    )


@dataclass(frozen=True)
class AttackStats:
    """One attack type: its sample count, APCER at the chosen threshold, AUC against all live samples
    (None for a decision-only model)."""

    count: int
    apcer: float
    auc: float | None


def attack_breakdown(
    predictions: npt.ArrayLike,
    labels: npt.ArrayLike,
    attack_types: Sequence[str | None],
    scores: npt.ArrayLike | None = None,
) -> dict[str, AttackStats]:
    """Per attack type (sorted by name): count, APCER of `predictions`, and, when `scores` are given, the
    AUC of that attack type's samples against every live sample."""
    predictions, labels = _predictions_and_labels(predictions, labels)
    spoof_types = _spoof_attack_types(labels, attack_types)
    per_attack = apcer_per_attack(predictions, labels, attack_types)
    checked_scores = None if scores is None else _score_array(scores, labels.size)
    spoof_indices = np.flatnonzero(labels == SPOOF)
    live_indices = np.flatnonzero(labels == LIVE)
    breakdown = {}
    for attack, apcer in per_attack.items():
        attack_indices = spoof_indices[spoof_types == attack]
        attack_auc = None
        if checked_scores is not None:
            subset = np.r_[live_indices, attack_indices]
            attack_auc = auc(checked_scores[subset], labels[subset])
        breakdown[attack] = AttackStats(count=int(attack_indices.size), apcer=apcer, auc=attack_auc)
    return breakdown


# ---------------------------------------------------------------------------------- video level


@dataclass(frozen=True)
class VideoScores:
    """One entry per video, in order of first appearance."""

    video_ids: list[str]
    scores: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]


def average_scores_per_video(
    video_ids: Sequence[str], scores: npt.ArrayLike, labels: npt.ArrayLike
) -> VideoScores:
    """Frame scores to video scores: the mean score of each video's frames (the usual video-level protocol
    of OULU-NPU / SiW / the MCIO papers). Every frame of a video must carry the same label; a video that
    mixes live and spoof frames raises ValueError naming it."""
    labels = _binary_array(labels, "labels")
    scores = _score_array(scores, labels.size)
    if len(video_ids) != labels.size:
        raise ValueError(f"{len(video_ids)} video ids but {labels.size} labels")
    unique_ids, first_index, inverse = np.unique(
        np.asarray(video_ids, dtype=str), return_index=True, return_inverse=True
    )
    n_videos = unique_ids.size
    frames = np.bincount(inverse, minlength=n_videos)
    spoof_frames = np.bincount(inverse, weights=labels, minlength=n_videos)
    mixed = np.flatnonzero((spoof_frames > 0) & (spoof_frames < frames))
    if mixed.size:
        raise ValueError(
            f"video {str(unique_ids[mixed[0]])!r} has both live and spoof frames; a video has one label"
        )
    mean_scores = np.bincount(inverse, weights=scores, minlength=n_videos) / frames
    order = np.argsort(first_index)
    return VideoScores(
        video_ids=[str(video) for video in unique_ids[order]],
        scores=mean_scores[order],
        labels=(spoof_frames[order] > 0).astype(np.int64),
    )

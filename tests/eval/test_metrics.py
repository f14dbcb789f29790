"""rft.eval.metrics against hand-computed cases, scikit-learn, chance-level data and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from rft.eval import metrics

# The hand-computed case. Live: 0.1 0.2 0.25 0.5 0.7; spoof: 0.3 (print) 0.6 (replay) 0.8 (print) 0.9 (print).
HAND_SCORES = [0.1, 0.2, 0.25, 0.5, 0.7, 0.3, 0.6, 0.8, 0.9]
HAND_LABELS = [0, 0, 0, 0, 0, 1, 1, 1, 1]
HAND_ATTACKS = [None, None, None, None, None, "print", "replay", "print", "print"]


def hand_predictions(threshold: float) -> np.ndarray:
    return metrics.predict_spoof(HAND_SCORES, threshold)


def test_rates_at_a_fixed_threshold_match_hand_computation():
    # At t = 0.5: spoof accepted as live (< 0.5): 0.3 -> FAR = 1/4.
    # Live rejected (>= 0.5): 0.5 (equal to t: spoof) and 0.7 -> FRR = 2/5.
    # HTER = (1/4 + 2/5) / 2 = 0.325. Correct: live 0.1 0.2 0.25, spoof 0.6 0.8 0.9 -> accuracy 6/9.
    rates = metrics.error_rates(hand_predictions(0.5), HAND_LABELS)
    assert rates.far == pytest.approx(1 / 4)
    assert rates.frr == pytest.approx(2 / 5)
    assert rates.hter == pytest.approx(0.325)
    assert rates.accuracy == pytest.approx(6 / 9)


def test_a_score_equal_to_the_threshold_counts_as_spoof():
    assert metrics.predict_spoof([0.49, 0.5, 0.51], 0.5).tolist() == [0, 1, 1]


def test_eer_matches_hand_computation():
    # Candidate t (unique scores), FAR (spoof < t), FRR (live >= t):
    #   0.3: 0, 2/5 | 0.5: 1/4, 2/5 | 0.6: 1/4, 1/5 (gap 0.05, the smallest) | 0.7: 2/4, 1/5
    # -> threshold 0.6, EER = (1/4 + 1/5) / 2 = 0.225.
    point = metrics.eer_point(HAND_SCORES, HAND_LABELS)
    assert point.threshold == 0.6
    assert (point.far, point.frr) == (pytest.approx(1 / 4), pytest.approx(1 / 5))
    assert point.eer == pytest.approx(0.225)
    assert metrics.eer(HAND_SCORES, HAND_LABELS) == pytest.approx(0.225)


def test_hter_at_the_sets_own_eer_threshold_is_its_eer():
    threshold = metrics.choose_threshold("eer", HAND_SCORES, HAND_LABELS)
    assert metrics.hter(hand_predictions(threshold), HAND_LABELS) == pytest.approx(0.225)


def test_dev_threshold_is_the_dev_sets_eer_threshold_applied_to_the_test_set():
    # Dev: live 0.2 0.4, spoof 0.3 0.9. t = 0.3: FAR 0, FRR 1/2; t = 0.4: FAR 1/2, FRR 1/2 -> threshold 0.4.
    # On the hand set at 0.4: FAR = {0.3} = 1/4, FRR = {0.5, 0.7} = 2/5, HTER = 0.325.
    threshold = metrics.choose_threshold(
        "dev", HAND_SCORES, HAND_LABELS, dev_scores=[0.2, 0.4, 0.3, 0.9], dev_labels=[0, 0, 1, 1]
    )
    assert threshold == 0.4
    assert metrics.hter(hand_predictions(threshold), HAND_LABELS) == pytest.approx(0.325)


def test_fixed_threshold_mode_defaults_to_one_half():
    assert metrics.choose_threshold("fixed", HAND_SCORES, HAND_LABELS) == 0.5
    assert metrics.choose_threshold("fixed", HAND_SCORES, HAND_LABELS, fixed_threshold=0.3) == 0.3


def test_eer_tie_across_the_crossing_goes_to_the_lower_hter():
    # Live 0.1 0.3 0.4, spoof 0.2 0.5. t = 0.3: FAR 1/2, FRR 2/3 (gap 1/6, HTER 7/12);
    # t = 0.4: FAR 1/2, FRR 1/3 (gap 1/6, HTER 5/12) -> 0.4 wins the tie.
    point = metrics.eer_point([0.1, 0.3, 0.4, 0.2, 0.5], [0, 0, 0, 1, 1])
    assert point.threshold == 0.4
    assert point.eer == pytest.approx(5 / 12)


def test_eer_of_identical_scores_is_one_half():
    point = metrics.eer_point([0.5, 0.5, 0.5], [0, 1, 1])
    assert (point.threshold, point.far, point.frr, point.eer) == (0.5, 0.0, 1.0, 0.5)


def test_auc_matches_hand_computation():
    # Pairs where spoof outscores live: 0.3 > 3 lives, 0.6 > 4, 0.8 > 5, 0.9 > 5 -> 17 / (4 * 5).
    assert metrics.auc(HAND_SCORES, HAND_LABELS) == pytest.approx(17 / 20)


def test_auc_counts_ties_as_one_half():
    # One spoof/live pair tied at 0.5, one spoof above the other live: (1 + 1/2 + 1 + 0) / 4.
    assert metrics.auc([0.5, 0.7, 0.5, 0.9], [0, 0, 1, 1]) == pytest.approx(0.625)


def test_tpr_at_fpr_depends_on_the_positive_class():
    # Spoof positive, no live flagged: t above 0.7 -> spoof 0.8 0.9 detected = 2/4.
    # Live positive, no spoof accepted: scores below 0.3 -> live 0.1 0.2 0.25 accepted = 3/5.
    assert metrics.tpr_at_fpr(HAND_SCORES, HAND_LABELS, 0.01, positive="spoof") == pytest.approx(0.5)
    assert metrics.tpr_at_fpr(HAND_SCORES, HAND_LABELS, 0.01, positive="live") == pytest.approx(0.6)
    # FPR <= 20% allows one live flagged (0.7) -> spoof 0.6 0.8 0.9 = 3/4.
    assert metrics.tpr_at_fpr(HAND_SCORES, HAND_LABELS, 0.2, positive="spoof") == pytest.approx(0.75)


def test_iso_30107_3_matches_hand_computation():
    # At t = 0.5: APCER print = {0.3} of {0.3, 0.8, 0.9} = 1/3, replay = 0/1, so APCER_max = 1/3 (print).
    # BPCER = FRR = 2/5. ACER = (1/3 + 2/5) / 2 = 11/30 (max APCER, not the pooled FAR of 1/4).
    iso = metrics.iso_30107_3(hand_predictions(0.5), HAND_LABELS, HAND_ATTACKS)
    assert iso.apcer_per_attack == {"print": pytest.approx(1 / 3), "replay": 0.0}
    assert (iso.apcer_max, iso.worst_attack) == (pytest.approx(1 / 3), "print")
    assert iso.bpcer == pytest.approx(2 / 5)
    assert iso.acer == pytest.approx(11 / 30)


def test_attack_breakdown_matches_hand_computation():
    # print {0.3, 0.8, 0.9} vs the 5 lives: 3 + 5 + 5 = 13 of 15 pairs; replay 0.6 beats 4 of 5 lives.
    breakdown = metrics.attack_breakdown(hand_predictions(0.5), HAND_LABELS, HAND_ATTACKS, HAND_SCORES)
    assert breakdown["print"] == metrics.AttackStats(
        count=3, apcer=pytest.approx(1 / 3), auc=pytest.approx(13 / 15)
    )
    assert breakdown["replay"] == metrics.AttackStats(count=1, apcer=0.0, auc=pytest.approx(4 / 5))


def test_attack_breakdown_without_scores_has_no_auc():
    breakdown = metrics.attack_breakdown(hand_predictions(0.5), HAND_LABELS, HAND_ATTACKS)
    assert {stats.auc for stats in breakdown.values()} == {None}


def test_spoof_sample_without_attack_type_is_an_error():
    with pytest.raises(ValueError, match="index 5 has no attack type"):
        metrics.apcer_per_attack(hand_predictions(0.5), HAND_LABELS, [None] * 9)


def test_decision_only_metrics_report_no_score_metrics():
    # Decisions live, spoof | spoof, live for live, live | spoof, spoof: FRR 1/2, FAR 1/2, accuracy 2/4.
    result = metrics.decision_only_metrics([0, 1, 1, 0], [0, 0, 1, 1])
    assert (result["far"], result["frr"], result["hter"], result["accuracy"]) == (0.5, 0.5, 0.5, 0.5)
    assert result["auc"] is None and result["eer"] is None and result["tpr_at_fpr"] is None
    assert "no score" in str(result["note"])


def test_frame_scores_average_per_video_in_order_of_appearance():
    videos = metrics.average_scores_per_video(["v2", "v1", "v2", "v1"], [0.6, 0.2, 1.0, 0.4], [1, 0, 1, 0])
    assert videos.video_ids == ["v2", "v1"]
    assert videos.scores == pytest.approx([0.8, 0.3])
    assert videos.labels.tolist() == [1, 0]


def test_a_video_with_mixed_labels_is_named():
    with pytest.raises(ValueError, match="'v1' has both live and spoof"):
        metrics.average_scores_per_video(["v0", "v1", "v1"], [0.1, 0.2, 0.3], [0, 0, 1])


def test_labels_from_strings():
    assert metrics.labels_from_strings(["live", "spoof", "live"]).tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="'Fake' at index 1"):
        metrics.labels_from_strings(["live", "Fake"])


@pytest.mark.parametrize(
    ("scores", "labels", "problem"),
    [
        ([], [], "empty input"),
        ([0.1, 0.2], [0, 0], "only live samples"),
        ([0.1, 0.2], [1, 1], "only spoof samples"),
        ([0.1, float("nan")], [0, 1], "index 1 is nan"),
        ([0.1, float("inf")], [0, 1], "index 1 is inf"),
        ([0.1, 0.2], [0, 2], "got 2 at index 1"),
        ([0.1, 0.2], ["live", "spoof"], "labels_from_strings"),
        ([0.1, 0.2, 0.3], [0, 1], r"shape \(3,\)"),
    ],
)
def test_degenerate_input_raises_a_named_error(scores, labels, problem):
    for metric in (metrics.auc, metrics.eer, metrics.tpr_at_fpr):
        with pytest.raises(ValueError, match=problem):
            metric(scores, labels)


def test_rates_of_one_class_raise():
    with pytest.raises(ValueError, match="only spoof samples"):
        metrics.hter([0, 1], [1, 1])


# ------------------------------------------------------------------------------------ scikit-learn


def random_scores_with_ties(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Informative scores rounded to two decimals, so that many samples tie."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1).round(2)
    return scores, labels


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_sklearn(seed):
    scores, labels = random_scores_with_ties(seed)
    assert metrics.auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("positive", ["spoof", "live"])
def test_roc_curve_equals_sklearn(seed, positive):
    scores, labels = random_scores_with_ties(seed)
    ours = metrics.roc_curve(scores, labels, positive=positive)
    if positive == "spoof":
        fpr, tpr, thresholds = sklearn_roc_curve(labels, scores, drop_intermediate=False)
    else:
        fpr, tpr, thresholds = sklearn_roc_curve(1 - labels, -scores, drop_intermediate=False)
        thresholds = -thresholds
    np.testing.assert_allclose(ours.fpr, fpr)
    np.testing.assert_allclose(ours.tpr, tpr)
    np.testing.assert_array_equal(ours.thresholds[1:], thresholds[1:])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("positive", ["spoof", "live"])
def test_tpr_at_fpr_equals_the_sklearn_roc_reading(seed, positive):
    scores, labels = random_scores_with_ties(seed, n=2000)
    if positive == "spoof":
        fpr, tpr, _ = sklearn_roc_curve(labels, scores, drop_intermediate=False)
    else:
        fpr, tpr, _ = sklearn_roc_curve(1 - labels, -scores, drop_intermediate=False)
    expected = tpr[fpr <= 0.01].max()
    assert metrics.tpr_at_fpr(scores, labels, 0.01, positive=positive) == pytest.approx(expected)


def test_random_scores_are_at_chance_level():
    rng = np.random.default_rng(1234)
    labels = rng.integers(0, 2, 20_000)
    scores = rng.random(20_000)
    assert metrics.auc(scores, labels) == pytest.approx(0.5, abs=0.03)
    assert metrics.eer(scores, labels) == pytest.approx(0.5, abs=0.03)
    assert metrics.hter(metrics.predict_spoof(scores, 0.5), labels) == pytest.approx(0.5, abs=0.03)


def test_separable_scores_are_perfect():
    rng = np.random.default_rng(7)
    scores = np.r_[rng.uniform(0, 0.4, 50), rng.uniform(0.6, 1, 50)]
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    assert metrics.auc(scores, labels) == 1.0
    assert metrics.eer(scores, labels) == 0.0
    assert metrics.tpr_at_fpr(scores, labels, 0.01) == 1.0


# -------------------------------------------------------------------------------------- properties

# Scores on a grid of 21 values, so that ties are frequent; both classes always present.
scored_sets = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 1)), min_size=2, max_size=60).filter(
    lambda pairs: len({label for _, label in pairs}) == 2
)


def as_arrays(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    grid, labels = np.asarray(pairs).T
    return grid / 20, labels


@settings(max_examples=80, deadline=None)
@given(scored_sets, st.sampled_from([0.0, 0.25, 0.5, 1.0]))
def test_rates_are_fractions(pairs, threshold):
    scores, labels = as_arrays(pairs)
    rates = metrics.error_rates(metrics.predict_spoof(scores, threshold), labels)
    assert 0 <= rates.far <= 1 and 0 <= rates.frr <= 1 and 0 <= rates.hter <= 1
    assert 0 <= metrics.eer(scores, labels) <= 1
    assert 0 <= metrics.auc(scores, labels) <= 1


@settings(max_examples=80, deadline=None)
@given(scored_sets)
def test_metrics_are_invariant_to_monotone_transforms(pairs):
    scores, labels = as_arrays(pairs)
    transformed = np.exp(3 * scores) - 7  # strictly increasing, and no longer a probability
    assert metrics.auc(transformed, labels) == pytest.approx(metrics.auc(scores, labels))
    assert metrics.eer(transformed, labels) == pytest.approx(metrics.eer(scores, labels))
    assert metrics.tpr_at_fpr(transformed, labels) == pytest.approx(metrics.tpr_at_fpr(scores, labels))


@settings(max_examples=80, deadline=None)
@given(scored_sets)
def test_swapping_the_classes_mirrors_the_auc(pairs):
    scores, labels = as_arrays(pairs)
    assert metrics.auc(scores, 1 - labels) == pytest.approx(1 - metrics.auc(scores, labels))


@settings(max_examples=80, deadline=None)
@given(scored_sets)
def test_eer_threshold_is_the_closest_to_equal_error_of_all_unique_scores(pairs):
    scores, labels = as_arrays(pairs)
    point = metrics.eer_point(scores, labels)
    for candidate in np.unique(scores):
        predictions = metrics.predict_spoof(scores, candidate)
        gap = abs(metrics.far(predictions, labels) - metrics.frr(predictions, labels))
        assert abs(point.far - point.frr) <= gap + 1e-12
    chosen = metrics.predict_spoof(scores, point.threshold)
    assert metrics.hter(chosen, labels) == pytest.approx(point.eer)

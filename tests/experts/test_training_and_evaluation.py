"""Training selects by dev AUC and learns a real signal; the report's figures are the ones defined in
rft.experts.evaluation (Appendix A.3: accuracy at the fixed 0.5 threshold, per attack type)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rft.eval.metrics import auc
from rft.experts.data import ToolPictures
from rft.experts.evaluation import acceptance, expert_report, hanley_mcneil_se
from rft.experts.model import ExpertArchitecture
from rft.experts.training import TrainingSettings, predict_probabilities, train_expert

SMALL = ExpertArchitecture(input_size=32, channels=(8, 16), hidden=16)
FAST = TrainingSettings(epochs=4, batch_size=16, threads=1)


def test_training_learns_a_peak_pattern_on_held_out_pictures(toy_split):
    train, test = toy_split
    model, history = train_expert(train, test, SMALL, FAST, progress=False)
    report = expert_report(predict_probabilities(model, test.inputs), test)
    assert report["overall"]["auc"] >= 0.9, history
    assert report["overall"]["beats_chance"]
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4]


def test_training_is_deterministic_for_a_seed(toy_split):
    train, _ = toy_split
    settings = TrainingSettings(epochs=1, batch_size=32, threads=1, seed=7)
    first, _ = train_expert(train, None, SMALL, settings, progress=False)
    second, _ = train_expert(train, None, SMALL, settings, progress=False)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_training_keeps_the_epoch_with_the_best_dev_auc(toy_split):
    train, test = toy_split
    model, history = train_expert(train, test, SMALL, FAST, progress=False)
    best = max(entry["dev_auc"] for entry in history)
    assert auc(predict_probabilities(model, test.inputs), test.labels) == pytest.approx(best)


def test_training_refuses_pictures_of_the_wrong_size(toy_split):
    train, _ = toy_split
    with pytest.raises(ValueError, match="architecture expects 64"):
        train_expert(train, None, ExpertArchitecture(input_size=64, channels=(8, 16)), FAST, progress=False)


def _pictures(labels, types, domains) -> ToolPictures:
    n = len(labels)
    return ToolPictures(
        inputs=np.zeros((n, 4, 4), np.float32),
        labels=np.asarray(labels),
        spoof_types=np.asarray(types),
        domains=np.asarray(domains),
        subjects=np.asarray([""] * n),
        sample_ids=np.asarray([str(i) for i in range(n)]),
    )


def test_report_per_attack_compares_with_live_of_the_same_domains():
    pictures = _pictures(
        labels=[0, 0, 0, 1, 1, 1],
        types=["live", "live", "live", "replay", "print", "replay"],
        domains=["studio", "studio", "street", "studio", "studio", "street"],
    )
    probabilities = np.array([0.1, 0.6, 0.9, 0.8, 0.7, 0.95])
    report = expert_report(probabilities, pictures)
    assert report["overall"]["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert report["live"] == {"n": 3, "accuracy": pytest.approx(1 / 3, abs=1e-4)}
    # print occurs in studio only: ranked against the two studio live images (0.7 beats 0.1 and 0.6)
    assert report["per_attack"]["print"] == {
        "n": 1,
        "domains": ["studio"],
        "accuracy": 1.0,
        "auc_vs_live": 1.0,
    }
    # replay in both domains: 0.8 and 0.95 against 0.1, 0.6, 0.9 -> 5 of 6 pairs
    assert report["per_attack"]["replay"]["auc_vs_live"] == pytest.approx(5 / 6, abs=1e-4)
    assert report["per_attack"]["replay"]["auc_vs_live_by_domain"] == {"street": 1.0, "studio": 1.0}
    assert "auc_vs_live_by_domain" not in report["per_attack"]["print"]
    assert report["per_domain"]["street"]["live_accuracy"] == 0.0


def test_hanley_mcneil_standard_error_shrinks_with_more_samples():
    assert hanley_mcneil_se(0.8, 400, 400) < hanley_mcneil_se(0.8, 40, 40)
    assert hanley_mcneil_se(1.0, 10, 10) == 0.0


def _report(auc: float, beats: bool, per_attack: dict) -> dict:
    return {"overall": {"auc": auc, "beats_chance": beats}, "per_attack": per_attack}


def test_acceptance_needs_every_expert_above_chance_and_the_targets_at_0_9():
    good = {
        "FFTTool": _report(0.8, True, {"replay": {"auc_vs_live": 0.93}}),
        "LBPTool": _report(0.7, True, {"print": {"auc_vs_live": 0.95}}),
        "HOGTool": _report(0.6, True, {}),
    }
    assert acceptance(good)["passed"]
    weak_target = {**good, "FFTTool": _report(0.8, True, {"replay": {"auc_vs_live": 0.89}})}
    assert not acceptance(weak_target)["targets_met"]
    at_chance = {**good, "HOGTool": _report(0.52, False, {})}
    verdict = acceptance(at_chance)
    assert verdict["targets_met"] and not verdict["every_expert_beats_chance"] and not verdict["passed"]

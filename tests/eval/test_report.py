"""rft.eval.report: compute_report on in-memory rows, and what the report module loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import rft
from rft.eval.report import compute_report
from rft.eval.scored_samples import InputError, ScoredSample


def test_domains_are_reported_each_and_averaged(domain_rows):
    # A at its EER threshold 0.4: FAR = {0.35} 1/2, FRR = {0.4} 1/2, HTER 0.5; AUC 3 of 4 pairs = 0.75.
    # B is separable: HTER 0 at threshold 0.7, AUC 1. Average: HTER 0.25, AUC 0.875.
    # Pooled (sorted: .1L .2L .3L .35S .4L .5L .7S .8S .9S): at t = 0.5 FAR 1/4, FRR 1/5 (the smallest gap)
    # -> HTER 0.225; AUC: 0.35 beats 3 lives, 0.7/0.8/0.9 beat 5 each -> 18/20 = 0.9.
    report = compute_report(domain_rows)
    assert report["domains"]["A"]["threshold"] == 0.4
    assert report["domains"]["A"]["hter"] == pytest.approx(0.5)
    assert report["domains"]["A"]["auc"] == pytest.approx(0.75)
    assert report["domains"]["B"]["hter"] == 0.0
    assert report["domains"]["B"]["auc"] == 1.0
    assert report["domain_average"] == {
        "n_domains": 2,
        "hter": pytest.approx(0.25),
        "auc": pytest.approx(0.875),
        "tpr_at_fpr_1pct": pytest.approx((0.5 + 1.0) / 2),
    }
    assert report["overall"]["threshold"] == 0.5
    assert report["overall"]["hter"] == pytest.approx(0.225)
    assert report["overall"]["auc"] == pytest.approx(0.9)


def test_fixed_threshold_applies_to_every_domain(domain_rows):
    # t = 0.5. A: FAR {0.35} 1/2, FRR 0 -> HTER 1/4. B: FAR 0, FRR {0.5} 1/3 -> HTER 1/6.
    report = compute_report(domain_rows, threshold_mode="fixed", threshold=0.5)
    assert report["settings"]["threshold"] == 0.5
    assert report["domains"]["A"]["hter"] == pytest.approx(1 / 4)
    assert report["domains"]["B"]["hter"] == pytest.approx(1 / 6)
    assert report["domain_average"]["hter"] == pytest.approx((1 / 4 + 1 / 6) / 2)


def test_iso_block_uses_the_worst_attack_type(domain_rows):
    # Overall at t = 0.5: print {0.35, 0.7, 0.9} -> APCER 1/3, replay {0.8} -> 0. BPCER = {0.5} of 5 lives.
    overall = compute_report(domain_rows, threshold_mode="fixed")["overall"]
    assert overall["attack_types"]["print"]["count"] == 3
    assert overall["attack_types"]["print"]["apcer"] == pytest.approx(1 / 3)
    assert overall["attack_types"]["replay"]["apcer"] == 0.0
    assert (overall["apcer_max"], overall["worst_attack"]) == (pytest.approx(1 / 3), "print")
    assert overall["bpcer"] == pytest.approx(1 / 5)
    assert overall["acer"] == pytest.approx((1 / 3 + 1 / 5) / 2)


def test_dev_threshold_comes_from_the_dev_rows(domain_rows):
    # Dev EER threshold: live 0.2 0.4, spoof 0.3 0.9 -> 0.4 (FAR 1/2 = FRR 1/2).
    dev = [
        ScoredSample("d1", "live", 0.2),
        ScoredSample("d2", "live", 0.4),
        ScoredSample("d3", "spoof", 0.3),
        ScoredSample("d4", "spoof", 0.9),
    ]
    report = compute_report(domain_rows, threshold_mode="dev", dev_rows=dev)
    assert report["settings"]["threshold"] == 0.4
    assert {block["threshold"] for block in report["domains"].values()} == {0.4}


def test_decision_only_rows_report_null_score_metrics():
    rows = [
        {"id": "1", "label": "live", "decision": "live"},
        {"id": "2", "label": "live", "decision": "spoof"},
        {"id": "3", "label": "spoof", "decision": "spoof", "attack_type": "print"},
        {"id": "4", "label": "spoof", "decision": "spoof", "attack_type": "replay"},
    ]
    report = compute_report(rows)
    overall = report["overall"]
    assert report["settings"]["input"] == "decision"
    assert (overall["far"], overall["frr"], overall["hter"], overall["accuracy"]) == (0.0, 0.5, 0.25, 0.75)
    assert overall["auc"] is None and overall["eer"] is None and overall["tpr_at_fpr_1pct"] is None
    assert "no score" in overall["note"]


def test_decision_only_rows_cannot_use_a_dev_threshold():
    rows = [
        {"id": "1", "label": "live", "decision": "live"},
        {"id": "2", "label": "spoof", "decision": "live"},
    ]
    with pytest.raises(InputError, match="needs scores"):
        compute_report(rows, threshold_mode="dev", dev_rows=rows)


def test_video_level_averages_frames_first():
    # Video scores: v1 live (0.1, 0.5) -> 0.3, v2 live 0.2, v3 spoof (0.4, 0.6) -> 0.5, v4 spoof 0.9.
    # At t = 0.5: FAR 0, FRR 0 (video level); at frame level frame 0.5 (live) is rejected: FRR 1/3.
    frames = [("f1", 0.1, "live", "v1"), ("f2", 0.5, "live", "v1"), ("f3", 0.2, "live", "v2")]
    frames += [("f4", 0.4, "spoof", "v3"), ("f5", 0.6, "spoof", "v3"), ("f6", 0.9, "spoof", "v4")]
    rows = [{"id": i, "score": s, "label": label, "video_id": v} for i, s, label, v in frames]
    videos = compute_report(rows, threshold_mode="fixed", video_level=True)
    assert videos["settings"]["level"] == "video"
    assert (videos["overall"]["n_samples"], videos["overall"]["hter"]) == (4, 0.0)
    frame_level = compute_report(rows, threshold_mode="fixed")
    assert frame_level["overall"]["frr"] == pytest.approx(1 / 3)


def test_a_domain_with_one_class_is_named(domain_rows):
    rows = [*domain_rows, {"id": "c1", "score": 0.3, "label": "live", "domain": "C"}]
    with pytest.raises(InputError, match="domain 'C' has only live samples"):
        compute_report(rows)


def test_report_is_json_serialisable(domain_rows):
    assert json.loads(json.dumps(compute_report(domain_rows)))["overall"]["n_spoof"] == 4


def test_the_report_loads_neither_the_rendering_nor_the_command():
    # The trainer's evaluation computes reports in its own process, which has no use for matplotlib.
    code = "import sys, rft.eval.report; print(' '.join(sys.modules))"
    root = Path(rft.__file__).parents[1]
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    unwanted = ("matplotlib", "rft.eval.render", "rft.eval.metrics_cli")
    assert [name for name in run.stdout.split() if name.startswith(unwanted)] == []

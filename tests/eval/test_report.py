"""rft.eval.report: compute_report on in-memory rows, and `rft metrics` end to end on CSV files."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from rft.cli import main as rft_main
from rft.eval.report import InputError, ScoredSample, compute_report, main

# Two domains. A: live 0.1 0.4, spoof 0.35 (print) 0.8 (replay). B: live 0.2 0.3 0.5, spoof 0.7 0.9 (print).
DOMAIN_ROWS = [
    {"id": "a1", "score": 0.1, "label": "live", "domain": "A"},
    {"id": "a2", "score": 0.4, "label": "live", "domain": "A"},
    {"id": "a3", "score": 0.35, "label": "spoof", "attack_type": "print", "domain": "A"},
    {"id": "a4", "score": 0.8, "label": "spoof", "attack_type": "replay", "domain": "A"},
    {"id": "b1", "score": 0.2, "label": "live", "domain": "B"},
    {"id": "b2", "score": 0.3, "label": "live", "domain": "B"},
    {"id": "b3", "score": 0.5, "label": "live", "domain": "B"},
    {"id": "b4", "score": 0.7, "label": "spoof", "attack_type": "print", "domain": "B"},
    {"id": "b5", "score": 0.9, "label": "spoof", "attack_type": "print", "domain": "B"},
]
CSV_HEADER = ["id", "score", "label", "attack_type", "video_id", "domain"]


def write_csv(path: Path, rows: list[dict], header: list[str] = CSV_HEADER) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_domains_are_reported_each_and_averaged():
    # A at its EER threshold 0.4: FAR = {0.35} 1/2, FRR = {0.4} 1/2, HTER 0.5; AUC 3 of 4 pairs = 0.75.
    # B is separable: HTER 0 at threshold 0.7, AUC 1. Average: HTER 0.25, AUC 0.875.
    # Pooled (sorted: .1L .2L .3L .35S .4L .5L .7S .8S .9S): at t = 0.5 FAR 1/4, FRR 1/5 (the smallest gap)
    # -> HTER 0.225; AUC: 0.35 beats 3 lives, 0.7/0.8/0.9 beat 5 each -> 18/20 = 0.9.
    report = compute_report(DOMAIN_ROWS)
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


def test_fixed_threshold_applies_to_every_domain():
    # t = 0.5. A: FAR {0.35} 1/2, FRR 0 -> HTER 1/4. B: FAR 0, FRR {0.5} 1/3 -> HTER 1/6.
    report = compute_report(DOMAIN_ROWS, threshold_mode="fixed", threshold=0.5)
    assert report["settings"]["threshold"] == 0.5
    assert report["domains"]["A"]["hter"] == pytest.approx(1 / 4)
    assert report["domains"]["B"]["hter"] == pytest.approx(1 / 6)
    assert report["domain_average"]["hter"] == pytest.approx((1 / 4 + 1 / 6) / 2)


def test_iso_block_uses_the_worst_attack_type():
    # Overall at t = 0.5: print {0.35, 0.7, 0.9} -> APCER 1/3, replay {0.8} -> 0. BPCER = {0.5} of 5 lives.
    overall = compute_report(DOMAIN_ROWS, threshold_mode="fixed")["overall"]
    assert overall["attack_types"]["print"]["count"] == 3
    assert overall["attack_types"]["print"]["apcer"] == pytest.approx(1 / 3)
    assert overall["attack_types"]["replay"]["apcer"] == 0.0
    assert (overall["apcer_max"], overall["worst_attack"]) == (pytest.approx(1 / 3), "print")
    assert overall["bpcer"] == pytest.approx(1 / 5)
    assert overall["acer"] == pytest.approx((1 / 3 + 1 / 5) / 2)


def test_dev_threshold_comes_from_the_dev_rows():
    # Dev EER threshold: live 0.2 0.4, spoof 0.3 0.9 -> 0.4 (FAR 1/2 = FRR 1/2).
    dev = [
        ScoredSample("d1", "live", 0.2),
        ScoredSample("d2", "live", 0.4),
        ScoredSample("d3", "spoof", 0.3),
        ScoredSample("d4", "spoof", 0.9),
    ]
    report = compute_report(DOMAIN_ROWS, threshold_mode="dev", dev_rows=dev)
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


def test_video_with_two_attack_types_is_named():
    rows = [
        {"id": "1", "score": 0.1, "label": "live", "video_id": "v1"},
        {"id": "2", "score": 0.7, "label": "spoof", "attack_type": "print", "video_id": "v2"},
        {"id": "3", "score": 0.8, "label": "spoof", "attack_type": "replay", "video_id": "v2"},
    ]
    with pytest.raises(
        InputError, match="video 'v2' has frames with attack_type 'print' and 'replay'"
    ) as error:
        compute_report(rows, video_level=True)
    assert error.value.index == 2


def test_bad_rows_raise_input_error_with_the_row_index():
    rows = [{"id": "1", "score": 0.1, "label": "live"}, {"id": "2", "score": 1.5, "label": "spoof"}]
    with pytest.raises(InputError, match=r"outside \[0, 1\]") as error:
        compute_report(rows)
    assert error.value.index == 1


def test_a_domain_with_one_class_is_named():
    rows = [*DOMAIN_ROWS, {"id": "c1", "score": 0.3, "label": "live", "domain": "C"}]
    with pytest.raises(InputError, match="domain 'C' has only live samples"):
        compute_report(rows)


def test_report_is_json_serialisable():
    assert json.loads(json.dumps(compute_report(DOMAIN_ROWS)))["overall"]["n_spoof"] == 4


# ---------------------------------------------------------------------------------------- command


def test_command_writes_json_markdown_and_plot(tmp_path):
    scores = write_csv(tmp_path / "scores.csv", DOMAIN_ROWS)
    out = tmp_path / "out"
    assert rft_main(["metrics", str(scores), "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["overall"]["hter"] == pytest.approx(0.225)
    assert report["domain_average"]["auc"] == pytest.approx(0.875)
    markdown = (out / "metrics.md").read_text()
    assert "| overall | 9 (5/4) | 0.5 | 22.50 | 90.00 |" in markdown
    assert "| Avg. (2 domains) |  |  | 25.00 | 87.50 |" in markdown
    assert (out / "roc.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(path.name for path in out.iterdir()) == ["metrics.json", "metrics.md", "roc.png"]


def test_command_with_dev_threshold_and_live_positive(tmp_path):
    scores = write_csv(tmp_path / "scores.csv", DOMAIN_ROWS)
    dev_rows = [
        {"id": "d1", "score": 0.2, "label": "live"},
        {"id": "d2", "score": 0.4, "label": "live"},
        {"id": "d3", "score": 0.3, "label": "spoof"},
        {"id": "d4", "score": 0.9, "label": "spoof"},
    ]
    dev = write_csv(tmp_path / "dev.csv", dev_rows, ["id", "score", "label"])
    out = tmp_path / "out"
    argv = [
        str(scores),
        "--out",
        str(out),
        "--threshold-mode",
        "dev",
        "--dev",
        str(dev),
        "--positive",
        "live",
    ]
    assert main(argv) == 0
    report = json.loads((out / "metrics.json").read_text())
    # Threshold 0.4 on the pooled set: FAR {0.35} 1/4, FRR {0.4, 0.5} 2/5.
    assert report["settings"] == {
        "threshold_mode": "dev",
        "threshold": 0.4,
        "positive": "live",
        "max_fpr": 0.01,
        "level": "frame",
        "input": "score",
    }
    assert report["overall"]["hter"] == pytest.approx((1 / 4 + 2 / 5) / 2)
    # Live positive, no spoof accepted: lives below 0.35 (0.1 0.2 0.3) accepted -> 3/5.
    assert report["overall"]["tpr_at_fpr_1pct"] == pytest.approx(3 / 5)


def test_decision_only_command_writes_no_plot_and_removes_a_stale_one(tmp_path):
    rows = [
        {"id": "1", "label": "live", "decision": "live"},
        {"id": "2", "label": "spoof", "decision": "live", "attack_type": "print"},
        {"id": "3", "label": "spoof", "decision": "spoof", "attack_type": "print"},
    ]
    scores = write_csv(tmp_path / "scores.csv", rows, ["id", "score", "label", "attack_type", "decision"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "roc.png").write_bytes(b"stale")
    assert main([str(scores), "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["overall"]["auc"] is None
    assert report["overall"]["hter"] == pytest.approx(0.25)
    assert "no ROC plot" in (out / "metrics.md").read_text()
    assert sorted(path.name for path in out.iterdir()) == ["metrics.json", "metrics.md"]


@pytest.mark.parametrize(
    ("content", "where", "problem"),
    [
        ("id,score,label\na,0.1,live\nb,abc,spoof\n", "line 3 (row 2)", "'abc' is not a number"),
        ("id,score,label\na,0.1,live\nb,0.9,fake\n", "line 3 (row 2)", "neither 'live' nor 'spoof'"),
        ("id,score,label\na,0.1,live\nb,1.7,spoof\n", "line 3 (row 2)", r"outside \[0, 1\]"),
        ("id,score,label\na,0.1,live\nb,nan,spoof\n", "line 3 (row 2)", "NaN"),
        ("id,score,label\na,0.1,live\nb,,spoof\n", "line 3 (row 2)", "score is empty"),
        ("id,score,label\na,0.1,live\na,0.9,spoof\n", "line 3 (row 2)", "repeats row 1"),
        ("id,score,label\na,0.1,live\nb,0.9,spoof,x\n", "line 3 (row 2)", "number of fields"),
        ("id,score\na,0.1\n", "line 1 (header)", "missing column 'label'"),
        ("id,label\na,live\n", "line 1 (header)", "missing column 'score'"),
        ("id,score,label\na,0.1,live\nb,0.3,live\n", "scores.csv:", "only live samples"),
        ("id,score,label\n", "scores.csv:", "no data rows"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_place(tmp_path, capsys, content, where, problem):
    scores = tmp_path / "scores.csv"
    scores.write_text(content)
    out = tmp_path / "out"
    assert main([str(scores), "--out", str(out)]) == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1
    assert message.startswith(f"rft metrics: error: {scores}")
    assert where in message
    assert re.search(problem, message)
    assert not out.exists()


def test_missing_file_exits_2(tmp_path, capsys):
    assert main([str(tmp_path / "absent.csv"), "--out", str(tmp_path / "out")]) == 2
    assert "absent.csv: no such file" in capsys.readouterr().err


def test_bad_dev_row_names_the_dev_file(tmp_path, capsys):
    scores = write_csv(tmp_path / "scores.csv", DOMAIN_ROWS)
    dev = tmp_path / "dev.csv"
    dev.write_text("id,score,label\nd1,0.2,live\nd2,high,spoof\n")
    assert (
        main([str(scores), "--out", str(tmp_path / "out"), "--threshold-mode", "dev", "--dev", str(dev)]) == 2
    )
    assert f"{dev} line 3 (row 2): score 'high'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options",
    [
        ["--threshold", "0.3"],
        ["--threshold-mode", "dev"],
        ["--dev", "dev.csv"],
        ["--threshold-mode", "fixed", "--threshold", "nan"],
    ],
)
def test_inconsistent_options_are_usage_errors(tmp_path, options):
    with pytest.raises(SystemExit) as exit_info:
        main(["scores.csv", "--out", str(tmp_path / "out"), *options])
    assert exit_info.value.code == 2

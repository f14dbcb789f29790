"""`rft metrics` (rft.eval.metrics_cli) end to end on CSV files: outputs, usage and one-line errors."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from rft.cli import main as rft_main
from rft.eval.metrics_cli import main

CSV_HEADER = ["id", "score", "label", "attack_type", "video_id", "domain"]


def write_csv(path: Path, rows: list[dict], header: list[str] = CSV_HEADER) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_command_writes_json_markdown_and_plot(domain_rows, tmp_path):
    scores = write_csv(tmp_path / "scores.csv", domain_rows)
    out = tmp_path / "out"
    assert rft_main(["metrics", str(scores), "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["overall"]["hter"] == pytest.approx(0.225)
    assert report["domain_average"]["auc"] == pytest.approx(0.875)
    markdown = (out / "metrics.md").read_text()
    assert "| overall | 9 (5/4) | 0.5 | 22.50 | 90.00 |" in markdown
    assert "| Avg. (2 domains) |  |  | 25.00 | 87.50 |" in markdown
    assert (out / "roc.png").read_bytes().startswith(b"\x89PNG")
    assert sorted(path.name for path in out.iterdir()) == [
        ".fas-rft.json",
        "metrics.json",
        "metrics.md",
        "roc.png",
    ]


def test_command_with_dev_threshold_and_live_positive(domain_rows, tmp_path):
    scores = write_csv(tmp_path / "scores.csv", domain_rows)
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


def test_decision_only_command_writes_no_plot_and_removes_a_stale_one(domain_rows, tmp_path):
    rows = [
        {"id": "1", "label": "live", "decision": "live"},
        {"id": "2", "label": "spoof", "decision": "live", "attack_type": "print"},
        {"id": "3", "label": "spoof", "decision": "spoof", "attack_type": "print"},
    ]
    scores = write_csv(tmp_path / "scores.csv", rows, ["id", "score", "label", "attack_type", "decision"])
    out = tmp_path / "out"
    assert main([str(write_csv(tmp_path / "earlier.csv", domain_rows)), "--out", str(out)]) == 0
    assert (out / "roc.png").is_file()  # from the earlier run, stale after the next
    assert main([str(scores), "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["overall"]["auc"] is None
    assert report["overall"]["hter"] == pytest.approx(0.25)
    assert "no ROC plot" in (out / "metrics.md").read_text()
    assert sorted(path.name for path in out.iterdir()) == [".fas-rft.json", "metrics.json", "metrics.md"]


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


def test_bad_dev_row_names_the_dev_file(domain_rows, tmp_path, capsys):
    scores = write_csv(tmp_path / "scores.csv", domain_rows)
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


def test_help_names_the_command_and_the_outputs(capsys):
    with pytest.raises(SystemExit) as exit_info:
        rft_main(["metrics", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: rft metrics [-h] --out DIR")
    assert "DIR/metrics.json" in help_text and "Conventions:" in help_text


def test_command_refuses_a_folder_it_did_not_make_and_leaves_it_untouched(domain_rows, tmp_path, capsys):
    scores = write_csv(tmp_path / "scores.csv", domain_rows)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "metrics.md").write_text("my own notes")
    assert main([str(scores), "--out", str(foreign)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"rft metrics: error: --out {foreign}: folder exists and was not made by rft metrics; "
        "choose a new folder"
    )
    assert [p.name for p in foreign.iterdir()] == ["metrics.md"]
    assert (foreign / "metrics.md").read_text() == "my own notes"
    out = tmp_path / "out"
    assert main([str(scores), "--out", str(out)]) == 0
    assert main([str(scores), "--out", str(out)]) == 0  # its own folder: written again

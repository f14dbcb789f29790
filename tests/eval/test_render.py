"""rft.eval.render: the Markdown table and the ROC plot drawn from plain lists of named evaluated sets."""

from __future__ import annotations

from rft.eval.render import EvaluatedSet, metrics_table, report_sets, write_roc_plot
from rft.eval.report import compute_report, roc_curves

# Separable: HTER 0, AUC 1 at the EER threshold 0.7.
RUN_A = [
    {"id": "1", "score": 0.1, "label": "live"},
    {"id": "2", "score": 0.3, "label": "live"},
    {"id": "3", "score": 0.7, "label": "spoof"},
]
# A spoof (0.2) below a live (0.3): at the EER threshold 0.3, FAR 1/2 (0.2) and FRR 1/2 (0.3); AUC 3/4.
RUN_B = [*RUN_A[:2], {"id": "3", "score": 0.2, "label": "spoof"}, {"id": "4", "score": 0.6, "label": "spoof"}]
DECISIONS = [
    {"id": "1", "label": "live", "decision": "live"},
    {"id": "2", "label": "spoof", "decision": "live"},
]


def test_a_table_row_per_named_set_of_any_origin():
    sets = [
        EvaluatedSet(name, compute_report(rows)["overall"]) for name, rows in (("A", RUN_A), ("B", RUN_B))
    ]
    header, separator, row_a, row_b = metrics_table(sets, "spoof")
    assert "TPR@FPR=1% (spoof)" in header and separator.count("|") == header.count("|")
    assert row_a.startswith("| A | 3 (2/1) | 0.7 | 0.00 | 100.00 | 0.00 |")
    assert row_b.startswith("| B | 4 (2/2) | 0.3 | 50.00 | 75.00 | 50.00 |")


def test_report_sets_pair_each_block_with_its_curve(domain_rows):
    report = compute_report(domain_rows)
    curves = roc_curves(domain_rows)
    sets = report_sets(report, curves)
    assert [evaluated.name for evaluated in sets] == ["overall", "A", "B"]
    assert all(evaluated.roc is curves[evaluated.name] for evaluated in sets)
    assert sets[1].metrics is report["domains"]["A"]
    assert {evaluated.roc for evaluated in report_sets(report)} == {None}


def test_the_plot_draws_the_sets_with_a_curve_and_skips_the_others(tmp_path):
    sets = [
        EvaluatedSet(name, compute_report(rows)["overall"], roc_curves(rows)["overall"])
        for name, rows in (("A", RUN_A), ("B", RUN_B))
    ]
    sets.append(EvaluatedSet("decisions", compute_report(DECISIONS)["overall"]))
    write_roc_plot(sets, "live", tmp_path / "roc.png")
    assert (tmp_path / "roc.png").read_bytes().startswith(b"\x89PNG")

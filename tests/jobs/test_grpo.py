"""rft.jobs.grpo's report lines (the job itself runs through launch/grpo.py: tests/launch/)."""

from rft.jobs.grpo import report_lines


def test_report_lines_name_stage_domain_and_answer():
    results = {
        "street": {
            "fast": {"overall": {"hter": 0.25, "auc": 0.8}},
            "final": {"overall": {"hter": 0.125, "auc": 0.9}},
        }
    }
    lines = report_lines("after GRPO", results)
    assert lines == [
        "[after GRPO] target street (fast answer): HTER 25.00%  AUC 80.00%",
        "[after GRPO] target street (final answer): HTER 12.50%  AUC 90.00%",
    ]

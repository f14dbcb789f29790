"""The format figures of rft.jobs.format_check (the demo's and benchmarks/bench_format.py's) count paper
003's whole format and valid tool calls, and nothing less."""

from __future__ import annotations

from rft.jobs.format_check import episode_row, summarize

FAST = "<Spoof><reason>The face looks flat.</reason>"
CALL = '<think>I will check the spectrum.</think>\n<tool_call>\n{"name": "FFTTool", "arguments": {}}\n</tool_call>'
ANSWER = "<think>So this is a spoof.</think>\n<answer><Spoof></answer>"


def test_a_whole_episode_with_a_valid_call_counts_for_both_rates() -> None:
    rows = [
        episode_row([FAST, CALL, ANSWER], "answer", "spoof", 3),
        episode_row([FAST, ANSWER], "answer", "live", 3),  # the format, no call, a wrong answer
        episode_row([FAST, CALL.replace("FFTTool", "FFT"), ANSWER], "answer", "spoof", 3),  # unknown tool
        episode_row(["<Spoof> flat", CALL, ANSWER], "answer", "spoof", 3),  # fast answer without <reason>
        episode_row([FAST, CALL], "max_tokens", "spoof", 3),  # no answer
    ]
    summary = summarize(rows)
    assert summary["format_rate"] == 2 / 5
    # A valid call counts even where the rest of the episode breaks the format (the last two rows).
    assert summary["tool_call_rate"] == 3 / 5
    assert summary["final_accuracy"] == 3 / 5
    assert summary["stops"] == {"answer": 4, "max_tokens": 1}

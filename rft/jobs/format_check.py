"""Does a policy write paper 003's episode format? Greedy episodes on held-out source images, parsed and
counted (benchmarks/bench_format.py prints them; the demo reports them after SFT stage 2).

- format: the fast answer is `<CLS><reason>..</reason>`, every reasoning turn is `<think>` + `<tool_call>` or
  `<think>` + `<answer>`, and the episode ends with an answer (paper 003's format, whole);
- tool call: the episode made at least one tool call that parsed and validated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rft.parsing.labels import as_label
from rft.parsing.tar_fas import parse_episode
from rft.rollout.protocols import EpisodeSource
from rft.rollout.sampling import Sampling

# Issue #15's bar for the demo's stage-2 model.
FORMAT_TARGET = 0.95
TOOL_CALL_TARGET = 0.80


def episode_row(turns: Sequence[str], stop_reason: str, label: Any, max_tool_calls: int) -> dict[str, Any]:
    """What the table counts of one episode."""
    parsed = parse_episode(turns, max_tool_calls)
    valid = [call.name for call in parsed.tool_calls if call.valid]
    return {
        "format_ok": parsed.fast.format_ok and parsed.reasoning_format_ok and not parsed.ended_without_answer,
        "valid_calls": len(valid),
        "distinct_tools": len(set(valid)),
        "correct": parsed.final_answer == as_label(label),
        "stop": stop_reason,
        "errors": [*parsed.errors, *([parsed.fast.error] if parsed.fast.error else [])],
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    count = len(rows)
    return {
        "episodes": count,
        "format_rate": sum(r["format_ok"] for r in rows) / count,
        "tool_call_rate": sum(r["valid_calls"] >= 1 for r in rows) / count,
        "mean_valid_calls": sum(r["valid_calls"] for r in rows) / count,
        "mean_distinct_tools": sum(r["distinct_tools"] for r in rows) / count,
        "final_accuracy": sum(r["correct"] for r in rows) / count,
        "stops": dict(Counter(r["stop"] for r in rows)),
        "common_errors": Counter(e[:80] for r in rows for e in r["errors"]).most_common(5),
    }


def format_rates(
    source: EpisodeSource, images: list, labels: list, *, max_tokens: int, max_tool_calls: int
) -> dict[str, Any]:
    """One greedy episode per image from `source` (its current weights), summarised; `first_episode` is an
    example's turns."""
    groups, _ = source.episodes(images, n=1, sampling=Sampling(max_tokens=max_tokens, temperature=0.0))
    rows = [
        episode_row(group[0].turns, group[0].stop_reason, label, max_tool_calls)
        for group, label in zip(groups, labels, strict=True)
    ]
    return {**summarize(rows), "first_episode": groups[0][0].turns}


def table_lines(title: str, summary: dict[str, Any]) -> list[str]:
    return [
        f"{title} ({summary['episodes']} greedy episodes on held-out source images)",
        "| figure | value |",
        "|---|---|",
        f"| paper 003 format | {summary['format_rate']:.1%} |",
        f"| >= 1 valid tool call | {summary['tool_call_rate']:.1%} |",
        f"| valid calls / episode | {summary['mean_valid_calls']:.2f} |",
        f"| distinct valid tools / episode | {summary['mean_distinct_tools']:.2f} |",
        f"| final answer correct | {summary['final_accuracy']:.1%} |",
        f"| stops | {', '.join(f'{k} {v}' for k, v in sorted(summary['stops'].items()))} |",
    ]

"""Format and tool-call rates of greedy episodes: does a checkpoint write paper 003's episode format?

    python benchmarks/bench_format.py --model runs/demo_cpu/sft_stage2/model --config demo_cpu --samples 48

Runs one greedy (temperature 0) episode per held-out source image (the protocol's dev split, images that
SFT never saw) with the tools executed for real (in-process vLLM and rewards, as the demo does), parses
each with rft.parsing.tar_fas.parse_episode and prints a table:

- format: the fast answer is `<CLS><reason>..</reason>`, every reasoning turn is `<think>` + `<tool_call>`
  or `<think>` + `<answer>`, and the episode ends with an answer (paper 003's format, whole);
- >= 1 valid call: the episode made at least one tool call that parsed and validated;
- mean valid calls, mean distinct valid tools, final-answer accuracy, and where episodes stopped.

`--json PATH` also writes the figures. Issue #15's bar after SFT stage 2: format >= 95%, >= 1 valid call
>= 80% (docs/EFFICACY.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    head, _, tail = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(
        description=head, epilog=tail, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="checkpoint folder (e.g. a stage's model/)")
    parser.add_argument(
        "--config", default="demo_cpu", help="config name or YAML: data, rollout, tool limits"
    )
    parser.add_argument("--samples", type=int, default=48, help="held-out source images (dev split)")
    parser.add_argument(
        "--max-tokens", type=int, default=None, help="tokens per turn (grpo.max_completion_length)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("overrides", nargs="*", help="section.key=value config overrides")
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        parser.error(f"--model {args.model}: no config.json there; pass a checkpoint folder")
    if args.samples < 1:
        parser.error(f"--samples {args.samples}: must be at least 1")
    return args


def episode_row(turns: Sequence[str], stop_reason: str, label: str, max_tool_calls: int) -> dict[str, Any]:
    """What the table counts of one episode."""
    from rft.parsing.labels import as_label
    from rft.parsing.tar_fas import parse_episode

    parsed = parse_episode(turns, max_tool_calls)
    valid = [call.name for call in parsed.tool_calls if call.valid]
    return {
        "format_ok": parsed.fast.format_ok and parsed.reasoning_format_ok and not parsed.ended_without_answer,
        "valid_calls": len(valid),
        "distinct_tools": len(set(valid)),
        "correct": parsed.final_answer == as_label(label),
        "stop": stop_reason,
        "errors": list(parsed.errors) + ([parsed.fast.error] if parsed.fast.error else []),
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
    }


def table(model: Path, summary: dict[str, Any]) -> str:
    lines = [
        f"greedy episodes of {model} on {summary['episodes']} held-out source images",
        "| figure | value |",
        "|---|---|",
        f"| paper 003 format | {summary['format_rate']:.1%} |",
        f"| >= 1 valid tool call | {summary['tool_call_rate']:.1%} |",
        f"| valid calls / episode | {summary['mean_valid_calls']:.2f} |",
        f"| distinct valid tools / episode | {summary['mean_distinct_tools']:.2f} |",
        f"| final answer correct | {summary['final_accuracy']:.1%} |",
        f"| stops | {', '.join(f'{k} {v}' for k, v in sorted(summary['stops'].items()))} |",
    ]
    return "\n".join(lines)


def measure(model_dir: Path, config: Any, samples: int, max_tokens: int) -> dict[str, Any]:
    """Greedy episodes of `model_dir` on the first `samples` dev images; the summary plus example errors."""
    from rft.jobs.demo import inprocess_source
    from rft.jobs.steps import protocol_data
    from rft.rollout.sampling import Sampling

    splits = protocol_data(config.data)
    held_out = splits.dev if splits.dev is not None else splits.source
    rows_in = held_out.select(range(min(samples, len(held_out))))
    source = inprocess_source(config, model_dir)
    try:
        groups, _ = source.episodes(
            list(rows_in["image"]), n=1, sampling=Sampling(max_tokens=max_tokens, temperature=0.0)
        )
    finally:
        source.close()
    rows = [
        episode_row(group[0].turns, group[0].stop_reason, label, config.grpo.max_tool_calls)
        for group, label in zip(groups, rows_in["label"], strict=True)
    ]
    summary = summarize(rows)
    summary["example_errors"] = Counter(e[:80] for r in rows for e in r["errors"]).most_common(5)
    summary["example_turns"] = groups[0][0].turns
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rft.config import load_config

    config = load_config(args.config, args.overrides)
    max_tokens = args.max_tokens or config.grpo.max_completion_length
    summary = measure(args.model, config, args.samples, max_tokens)
    print(table(args.model, summary))
    print("most common errors:", summary["example_errors"])
    print("first episode:", json.dumps(summary["example_turns"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

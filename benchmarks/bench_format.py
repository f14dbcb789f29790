"""Format and tool-call rates of greedy episodes: does a checkpoint write paper 003's episode format?

    python benchmarks/bench_format.py --model runs/demo_cpu/sft_stage2/model --config demo_cpu --samples 48

Runs one greedy (temperature 0) episode per held-out source image (the protocol's dev split, images SFT
never saw) with the tools executed for real (in-process vLLM and rewards, as the demo does), parses each
(rft.jobs.format_check) and prints a table: the share in paper 003's whole format, the share with at least
one valid tool call, valid calls and distinct tools per episode, final-answer accuracy, where episodes
stopped, and the most common format errors. Issue #15's bar after SFT stage 2: format >= 95%, >= 1 valid
call >= 80% (docs/EFFICACY.md). `--json PATH` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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
        "--max-tokens", type=int, default=None, help="tokens per turn (default: the config's)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("overrides", nargs="*", help="section.key=value config overrides")
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        parser.error(f"--model {args.model}: no config.json there; pass a checkpoint folder")
    if args.samples < 1:
        parser.error(f"--samples {args.samples}: must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rft.config import load_config
    from rft.jobs.demo import held_out_format

    config = load_config(args.config, args.overrides)
    summary = held_out_format(args.model, config, samples=args.samples, max_tokens=args.max_tokens)
    from rft.jobs.format_check import table_lines

    print("\n".join(table_lines(f"format of {args.model}", summary)))
    print("most common errors:", summary["common_errors"])
    print("first episode:", json.dumps(summary["first_episode"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

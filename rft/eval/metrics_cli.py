"""`rft metrics`: the HTER / AUC / EER / TPR@FPR / ISO 30107-3 report of a scores CSV.

    rft metrics scores.csv --out runs/eval/metrics
    rft metrics scores.csv --out DIR --threshold-mode dev --dev dev_scores.csv --video-level

The report is `rft.eval.report.compute_report`'s dict (the trainer's evaluation calls it on in-memory samples
instead), which the command writes as DIR/metrics.json next to DIR/metrics.md (a table) and DIR/roc.png,
both drawn by `rft.eval.render`. Conventions and the CSV format are in docs/METRICS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from rft.eval.metrics import DEFAULT_THRESHOLD, Positive, RocCurve, ThresholdMode
from rft.eval.render import percent, render_markdown, report_sets, write_roc_plot
from rft.eval.report import compute_report, roc_curves
from rft.eval.scored_samples import InputError, Source, load_samples
from rft.eval.scores_csv import CsvError, locate_input_error, read_scores_csv
from rft.outputs import OutputDirError, claim_output_dir

METRICS_COMMAND = "rft metrics"  # named in the marker of the folders it writes (rft.outputs)


def write_outputs(out_dir: Path, report: Mapping[str, Any], curves: Mapping[str, RocCurve]) -> None:
    """Write metrics.json, metrics.md and roc.png via a temporary folder, then rename them into `out_dir`,
    so a failure leaves no half-written file. A stale roc.png is removed when there is no plot to show.
    `out_dir` must be new or this command's (rft.outputs.claim_output_dir): any other raises OutputDirError."""
    claim_output_dir(out_dir, METRICS_COMMAND)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".metrics-") as staging:
        staged = Path(staging)
        (staged / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
        (staged / "metrics.md").write_text(render_markdown(report))
        if curves:
            positive = report["settings"]["positive"]
            write_roc_plot(report_sets(report, curves), positive, staged / "roc.png")
        for name in ("metrics.json", "metrics.md", "roc.png"):
            if (staged / name).exists():
                os.replace(staged / name, out_dir / name)
    if not curves:
        (out_dir / "roc.png").unlink(missing_ok=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rft metrics",
        description="Face anti-spoofing metrics (HTER, AUC, EER, TPR@FPR=1%, ISO/IEC 30107-3 "
        "APCER/BPCER/ACER, per attack type and per domain) of a scores CSV. Writes DIR/metrics.json, "
        "DIR/metrics.md and DIR/roc.png.",
        epilog="CSV columns: id,score,label[,attack_type,video_id,domain,decision]. score = probability "
        "of spoof in [0, 1]; label = live or spoof; leave score empty and give decision (live/spoof) for a "
        "model without scores. With a domain column, each domain is reported and HTER/AUC are averaged over "
        "domains. Conventions: docs/METRICS.md.",
    )
    parser.add_argument("scores", type=Path, metavar="SCORES.csv", help="per-sample scores to evaluate")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="output folder: new, or one this command wrote"
    )
    parser.add_argument(
        "--threshold-mode",
        choices=get_args(ThresholdMode),
        default="eer",
        help="HTER threshold: eer = each set's own EER threshold (SSDG/FLIP tables, default); fixed = "
        "--threshold; dev = the EER threshold of --dev, applied unchanged",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"the threshold of --threshold-mode fixed (default {DEFAULT_THRESHOLD}); spoof iff score >= it",
    )
    parser.add_argument(
        "--dev", type=Path, metavar="DEV.csv", help="development-set scores for --threshold-mode dev"
    )
    parser.add_argument(
        "--positive",
        choices=get_args(Positive),
        default="spoof",
        help="class whose TPR is reported at FPR=1%% and on the ROC plot (default spoof)",
    )
    parser.add_argument(
        "--video-level",
        action="store_true",
        help="average frame scores per video_id before computing metrics",
    )
    return parser


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.threshold is not None and args.threshold_mode != "fixed":
        parser.error("--threshold is only used with --threshold-mode fixed")
    if (args.dev is not None) != (args.threshold_mode == "dev"):
        parser.error("--dev DEV.csv and --threshold-mode dev go together")
    if args.threshold is not None and not math.isfinite(args.threshold):
        parser.error(f"--threshold {args.threshold} is not a finite number")
    return args


def _fail(message: str) -> int:
    print(f"rft metrics: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        rows, lines = read_scores_csv(args.scores)
        dev_rows, dev_lines = read_scores_csv(args.dev) if args.dev is not None else (None, [])
    except CsvError as error:
        return _fail(str(error))
    files: dict[Source, tuple[Path | None, list[int]]] = {
        "rows": (args.scores, lines),
        "dev_rows": (args.dev, dev_lines),
    }
    try:
        samples = load_samples(rows, "rows")
        report = compute_report(
            samples,
            threshold_mode=args.threshold_mode,
            threshold=DEFAULT_THRESHOLD if args.threshold is None else args.threshold,
            dev_rows=None if dev_rows is None else load_samples(dev_rows, "dev_rows"),
            positive=args.positive,
            video_level=args.video_level,
        )
        curves = roc_curves(samples, args.positive, args.video_level)
    except InputError as error:
        return _fail(locate_input_error(error, files))
    try:
        write_outputs(args.out, report, curves)
    except OutputDirError as error:
        return _fail(f"--out {error}")
    overall = report["overall"]
    print(
        f"HTER {percent(overall['hter'])}, AUC {percent(overall['auc'])}, "
        f"EER {percent(overall['eer'])} (%) on {overall['n_samples']} {report['settings']['level']}s "
        f"-> {args.out}/metrics.json, metrics.md" + (", roc.png" if curves else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

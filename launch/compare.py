"""Runs side by side on one protocol: `python launch/compare.py NAME=PATH [NAME=PATH ...] --out DIR`.

Writes DIR/comparison.md (one row per run: HTER at the dev threshold and at the EER threshold, AUC,
TPR@FPR=1%, APCER per attack type, on the pooled target sets), DIR/comparison.json and DIR/roc.png (a ROC
curve per scored run). PATH is a folder of per-sample scores CSVs (dev.csv, <target>.csv), a run folder
with such folders below it (a caption run: eval/head and eval/explanation; an InstructFLIP run), or a GRPO /
SFT run folder, whose exported policy is scored first by its fast answer (kept in DIR/scores/NAME/).
Example: python launch/compare.py dt_grpo=runs/demo_cpu caption=runs/caption_cpu --out runs/compare
docs/BASELINES.md has the details.
"""

from __future__ import annotations

import sys

from rft.errors import run_command
from rft.jobs import compare


def main(argv: list[str] | None = None) -> int:
    def job() -> int:
        return compare.main_job(compare.parser(__doc__).parse_args(argv))

    return run_command(job)


if __name__ == "__main__":
    sys.exit(main())

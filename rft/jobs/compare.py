"""The comparison behind launch/compare.py: reads (or first computes) each run's per-sample scores and writes
one table and one ROC plot (rft.eval.compare).

A run is given as NAME=PATH. PATH is a score folder (dev.csv, <target>.csv: rft.eval.score_files), or a run
folder holding score folders anywhere below it (a caption run holds two, eval/head and eval/explanation, which
become the rows "NAME head" and "NAME explanation"; an InstructFLIP run writes the same format), or a GRPO /
SFT run folder without scores: its exported policy (grpo/model, else sft_stage2/model) is then scored by its
fast answer's P(spoof) (paper 003's AUC convention, rft.eval.target) on the dev and target sets of the
protocol in its saved config, and the scores are kept in OUT/scores/NAME/. A method without a fast answer
(rft_fas, paper 001) is compared by the final answer's P(spoof) its GRPO job's final evaluation recorded
(grpo/eval/samples_step_N.jsonl), on the target sets only (no dev threshold).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rft.errors import RunSetupError

POLICY_STAGES = ("grpo", "sft_stage2", "sft_stage1")


def parser(doc: str, prog: str | None = None) -> argparse.ArgumentParser:
    head, _, tail = doc.partition("\n\n")
    parser = argparse.ArgumentParser(
        prog=prog,
        description=head,
        epilog=tail,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "runs", nargs="+", metavar="NAME=PATH", help="a run's name in the table and its folder"
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="output folder (new, or this command's)"
    )
    parser.add_argument(
        "--max-samples", type=int, default=None, help="cap per set when a run's policy must be scored first"
    )
    return parser


def parse_runs(specs: list[str]) -> dict[str, Path]:
    runs: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path:
            raise RunSetupError(f"run {spec!r} is not NAME=PATH; e.g. dt_grpo=runs/demo_cpu")
        if name in runs:
            raise RunSetupError(f"run name {name!r} is given twice; give each run its own name")
        runs[name.strip()] = Path(path)
    return runs


def score_folders(name: str, path: Path) -> dict[str, Path]:
    """The run's score folders: PATH itself when it holds CSVs, else every folder below it that does."""
    if not path.is_dir():
        raise RunSetupError(f"run {name!r}: {path} is not a folder")
    if any(path.glob("*.csv")):
        return {name: path}
    found = sorted({csv.parent for csv in path.rglob("*.csv") if "checkpoint" not in str(csv.parent)})
    if len(found) == 1:
        return {name: found[0]}
    return {f"{name} {folder.name}": folder for folder in found}


def policy_run(path: Path) -> tuple[Path, Path] | None:
    """(saved config, exported policy) of a GRPO / SFT run folder, the latest stage first; None otherwise."""
    for stage in POLICY_STAGES:
        config, model = path / stage / "config.yaml", path / stage / "model" / "config.json"
        if config.is_file() and model.is_file():
            return config, model.parent
    return None


def score_policy(name: str, config_path: Path, model_dir: Path, out: Path, max_samples: int | None) -> Path:
    """The fast answer's P(spoof) of the run's policy on its protocol's dev and targets, as a score folder."""
    from rft.config import load_config
    from rft.eval.score_files import DEV_SET, write_scores_csv
    from rft.eval.target import fast_answer_scores, report_rows, subsample
    from rft.jobs.steps import protocol_data
    from rft.methods import method_named
    from rft.models.conversation import ConversationTokenizer
    from rft.models.loading import detect_arch, load_policy
    from rft.tools import tool_schemas

    config = load_config(config_path)
    if not method_named(config.grpo.method).fast_answer:
        return recorded_final_scores(name, config_path.parent / "eval", out)
    splits = protocol_data(config.data)
    model, processor = load_policy(model_dir, config.model.dtype)
    tokenizer = ConversationTokenizer(
        processor, detect_arch(model_dir), tools=tool_schemas(config.run.tool_names)
    )
    sets = {**({DEV_SET: splits.dev} if splits.dev is not None else {}), **splits.targets}
    folder = out / "scores" / name
    for set_name, dataset in sets.items():
        chosen = subsample(dataset, max_samples or config.eval.max_samples, config.run.seed)
        images = [image.convert("RGB") for image in chosen["image"]]
        scores = fast_answer_scores(model, tokenizer, images, batch_size=config.eval.batch_size)
        rows = [{**row, "score": s} for row, s in zip(report_rows(chosen, set_name), scores, strict=True)]
        write_scores_csv(folder / f"{set_name}.csv", rows)
    return folder


def recorded_final_scores(name: str, eval_dir: Path, out: Path) -> Path:
    """The final answer's P(spoof) that the run's own last evaluation recorded (`eval_dir`'s newest
    samples_step_N.jsonl), as a score folder of its target sets: how a method without a fast answer (rft_fas)
    is compared. That evaluation has no dev set, so the row has no dev threshold."""
    from rft.eval.sample_records import SAMPLES_PREFIX, latest_samples_file
    from rft.eval.score_files import write_scores_csv

    recorded = latest_samples_file(eval_dir)
    if recorded is None:
        raise RunSetupError(
            f"run {name!r}: its method has no fast answer to score, and {eval_dir} holds no recorded evaluation "
            f"({SAMPLES_PREFIX}N.jsonl); let the GRPO job finish its final evaluation, or give a score folder"
        )
    by_target: dict[str, list[dict]] = {}
    lines = recorded.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, start=1):
        row = recorded_final_row(line)
        if row is None:
            raise RunSetupError(
                f"run {name!r}: line {number} of {recorded} is not a sample record with a final-answer score "
                "(id, label, attack_type, domain, scores.final); rerun the GRPO job's evaluation"
            )
        by_target.setdefault(row["domain"], []).append(row)
    folder = out / "scores" / name
    for target, rows in by_target.items():
        write_scores_csv(folder / f"{target}.csv", rows)
    return folder


def recorded_final_row(line: str) -> dict | None:
    """A scores-CSV row from one line of sample records, or None when the line is not such a record."""
    import json
    import re

    try:
        record = json.loads(line)
        row = {key: record[key] for key in ("id", "label", "attack_type", "domain")}
        score = record["scores"]["final"]
    except (ValueError, KeyError, TypeError):
        return None
    # The domain names a CSV file: a plain name only.
    if not isinstance(row["domain"], str) or not re.fullmatch(r"\w[\w.-]*", row["domain"]):
        return None
    if isinstance(score, bool) or not isinstance(score, int | float):
        return None
    return {**row, "score": score}


def run(runs: dict[str, Path], out: Path, max_samples: int | None = None) -> list[Path]:
    """Every run's rows, then the table and the plot; returns the written files."""
    from rft.eval.compare import evaluate_run, write_comparison
    from rft.eval.score_files import read_score_folder
    from rft.outputs import claim_output_dir

    claim_output_dir(out, "rft compare")
    results = []
    for name, path in runs.items():
        folders = score_folders(name, path)
        if not folders:
            policy = policy_run(path)
            if policy is None:
                raise RunSetupError(
                    f"run {name!r}: {path} holds no scores CSV and no exported policy (grpo/model, "
                    "sft_stage2/model); evaluate the run first"
                )
            folders = {name: score_policy(name, *policy, out, max_samples)}
        results += [evaluate_run(row, read_score_folder(folder)) for row, folder in folders.items()]
    return write_comparison(out, results)


def main_job(args: Any) -> int:
    written = run(parse_runs(args.runs), args.out, args.max_samples)
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`rft compare NAME=PATH ... --out DIR` (the same as launch/compare.py)."""
    return main_job(parser(__doc__, prog="rft compare").parse_args(argv))

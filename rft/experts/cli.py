"""`rft experts`: train the per-tool expert CNNs of paper 003 (Appendix A.3) and evaluate them.

rft experts train --data .cache/experts/synth112 --out models/experts
rft experts evaluate --experts models/experts --data .cache/experts/synth112 --split test
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from pydantic import ValidationError

from rft.experts.bank import Expert, ExpertBank, save_expert
from rft.experts.data import ToolPictures, load_benchmark, tool_pictures
from rft.experts.evaluation import TARGET_ATTACKS, acceptance, expert_report
from rft.experts.inputs import EXPERT_TOOLS
from rft.experts.model import ExpertArchitecture
from rft.experts.training import TrainingSettings, predict_probabilities, torch_threads, train_expert
from rft.outputs import OutputDirError, claim_output_dir, write_json

DEFAULT_CACHE = Path(".cache/experts/pictures")
EXPERTS_COMMAND = "rft experts"  # named in the marker of the folders it writes (rft.outputs)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (rft.data.schema layout)")
    parser.add_argument(
        "--tools",
        nargs="+",
        choices=EXPERT_TOOLS,
        default=list(EXPERT_TOOLS),
        help="tools (default: all five)",
    )
    parser.add_argument("--domains", nargs="+", help="only images of these domains (default: all)")
    parser.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE, help=f"tool-picture cache (default: {DEFAULT_CACHE})"
    )
    parser.add_argument("--no-cache", action="store_true", help="recompute tool pictures, store nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rft experts",
        description=(
            "Expert CNNs of TAR-FAS (paper 003, Appendix A.3, Figure S9): one per tool except ZoomInTool,\n"
            "trained on that tool's output picture alone to predict P(spoof trace). Their predictions become\n"
            "the annotation guidance 'This is the result of FFTTool. The expert predicts 87% ...' (Eq. 5-6)."
        ),
        epilog=(
            "examples:\n"
            "  rft experts train --data data/synthetic --out models/experts\n"
            "  rft experts evaluate --experts models/experts --data data/synthetic --split test\n\n"
            "Figures are written to OUT/report.json (per tool, per attack type, per domain). "
            "See docs/DATASET_CONSTRUCTION.md."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser(
        "train",
        help="train experts, evaluate them on the test split, write OUT/<Tool>.pt|json and OUT/report.json",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_data_arguments(train)
    train.add_argument(
        "--out", type=Path, required=True, help="experts folder: new, or one this command wrote (tools added)"
    )
    train.add_argument("--train-split", default="train")
    train.add_argument(
        "--dev-split", default="dev", help="model selection by AUC; 'none' to keep the last epoch"
    )
    train.add_argument("--test-split", default="test")
    train.add_argument("--input-size", type=int, default=ExpertArchitecture().input_size)
    train.add_argument("--channels", type=int, nargs="+", default=list(ExpertArchitecture().channels))
    train.add_argument("--epochs", type=int, default=TrainingSettings().epochs)
    train.add_argument("--batch-size", type=int, default=TrainingSettings().batch_size)
    train.add_argument("--lr", type=float, default=TrainingSettings().learning_rate)
    train.add_argument(
        "--argument-mix",
        type=float,
        default=0.0,
        help="share of training pictures made with random tool arguments instead of the defaults",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=TrainingSettings().threads, help="torch CPU threads")
    evaluate = commands.add_parser(
        "evaluate",
        help="score saved experts on a split and write a report",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_data_arguments(evaluate)
    evaluate.add_argument("--experts", type=Path, required=True, help="experts folder")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument(
        "--argument-mix", type=float, default=0.0, help="share of pictures with random arguments"
    )
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--threads", type=int, default=TrainingSettings().threads, help="torch CPU threads")
    evaluate.add_argument("--report", type=Path, help="report path (default: EXPERTS/report-<split>.json)")
    return parser


def _pictures(dataset, tool: str, split: str, args, input_size: int, argument_mix: float) -> ToolPictures:
    return tool_pictures(
        dataset,
        tool,
        split,
        input_size,
        domains=tuple(args.domains) if args.domains else None,
        argument_mix=argument_mix,
        seed=args.seed,
        cache_dir=None if args.no_cache else args.cache_dir,
        progress=not args.quiet,
    )


def _held_out(train: ToolPictures, test: ToolPictures) -> bool | None:
    """Whether no test subject appears in training (None when the dataset records no subjects)."""
    if not all(train.subjects) or not all(test.subjects):
        return None
    return not set(train.subjects.tolist()) & set(test.subjects.tolist())


def _train_one(
    dataset, tool: str, args, architecture: ExpertArchitecture, settings: TrainingSettings
) -> dict:
    size = architecture.input_size
    train = _pictures(dataset, tool, args.train_split, args, size, args.argument_mix)
    dev = None if args.dev_split == "none" else _pictures(dataset, tool, args.dev_split, args, size, 0.0)
    test = _pictures(dataset, tool, args.test_split, args, size, 0.0)
    model, history = train_expert(
        train, dev, architecture, settings, description=f"train {tool}", progress=not args.quiet
    )
    with torch_threads(settings.threads):
        report = expert_report(predict_probabilities(model, test.inputs), test)
    record = {
        "dataset": str(args.data),
        "fingerprint": dataset._fingerprint,
        "splits": {"train": args.train_split, "dev": args.dev_split, "test": args.test_split},
        "domains": args.domains,
        "n_train": len(train),
        "argument_mix": args.argument_mix,
        "held_out_subjects": _held_out(train, test),
        "settings": settings.model_dump(),
        "history": history,
        "test": report,
    }
    save_expert(args.out, Expert(tool=tool, architecture=architecture, model=model, record=record))
    return report


def run_train(args) -> dict:
    architecture = ExpertArchitecture(input_size=args.input_size, channels=tuple(args.channels))
    settings = TrainingSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        threads=args.threads,
    )
    claim_output_dir(args.out, EXPERTS_COMMAND)
    dataset = load_benchmark(args.data)
    reports = {tool: _train_one(dataset, tool, args, architecture, settings) for tool in args.tools}
    return _full_report(args, args.test_split, reports, args.out / "report.json")


def run_evaluate(args) -> dict:
    bank = ExpertBank.load(args.experts, tuple(args.tools) if args.tools != list(EXPERT_TOOLS) else None)
    dataset = load_benchmark(args.data)
    reports = {}
    for tool, expert in bank.experts.items():
        pictures = _pictures(
            dataset, tool, args.split, args, expert.architecture.input_size, args.argument_mix
        )
        reports[tool] = expert_report(predict_probabilities(expert.model, pictures.inputs), pictures)
    path = args.report or args.experts / f"report-{args.split}.json"
    return _full_report(args, args.split, reports, path)


def _full_report(args, split: str, reports: dict, path: Path) -> dict:
    report = {
        "command": "rft experts " + shlex.join(args.argv),
        "dataset": str(args.data),
        "split": split,
        "threshold": 0.5,
        "tools": reports,
        "targets": {tool: list(attacks) for tool, attacks in TARGET_ATTACKS.items()},
        "acceptance": acceptance(reports),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report, durable=True)
    report["path"] = str(path)
    return report


def format_table(report: dict) -> str:
    """Accuracy / AUC per tool, then AUC (accuracy) per attack type: what Figure S7 shows for CelebA-Spoof."""
    attacks = sorted({attack for tool in report["tools"].values() for attack in tool["per_attack"]})
    header = f"{'tool':<22}{'acc':>7}{'AUC':>7}{'live acc':>10}  " + "  ".join(f"{a:>16}" for a in attacks)
    lines = [header]
    for tool, figures in report["tools"].items():
        overall = figures["overall"]
        cells = []
        for attack in attacks:
            entry = figures["per_attack"].get(attack)
            cells.append(f"{entry['auc_vs_live']:.3f} ({entry['accuracy']:.2f})" if entry else "-")
        lines.append(
            f"{tool:<22}{overall['accuracy']:>7.3f}{overall['auc'] or float('nan'):>7.3f}"
            f"{figures['live']['accuracy'] or float('nan'):>10.3f}  " + "  ".join(f"{c:>16}" for c in cells)
        )
    verdict = report["acceptance"]
    lines.append(
        f"per attack: AUC vs live (accuracy at 0.5). every expert beats chance: "
        f"{verdict['every_expert_beats_chance']}; targets (AUC >= {verdict['target_auc']}): {verdict['targets']} "
        f"-> {'met' if verdict['targets_met'] else 'NOT met'}"
    )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv)
    started = time.perf_counter()
    try:
        report = run_train(args) if args.command == "train" else run_evaluate(args)
    except ValidationError as error:
        detail = error.errors()[0]
        where = ".".join(str(part) for part in detail["loc"]) or "settings"
        print(f"rft experts: error: {where}: {detail['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 2
    except OutputDirError as error:
        print(f"rft experts: error: --out {error}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as error:
        print(f"rft experts: error: {error}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(f"report: {report['path']} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

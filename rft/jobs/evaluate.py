"""Checkpoints scored on a protocol's target domains, behind launch/evaluate.py (and the demo's evaluations).

One in-process vLLM engine serves every checkpoint's greedy episodes (each checkpoint's weights are pushed
into it in turn), with in-process tools, as in the CPU demo. Each target domain gets the fast- and
final-answer reports of `rft.eval.target.evaluate_targets`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rft.config import ConfigError, ExperimentConfig, load_config
from rft.jobs.grpo import report_lines, score_targets
from rft.jobs.steps import config_parser, protocol_data, seed_everything
from rft.outputs import write_json

if TYPE_CHECKING:
    from rft.data.protocols import ProtocolData


def parser(doc: str) -> argparse.ArgumentParser:
    """The launcher's parser; `doc` (its docstring) is the help text."""
    parser = config_parser(doc, example="data.protocol=NAME")
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        type=Path,
        help="a checkpoint folder (a plain Hugging Face folder, e.g. runs/demo_cpu/grpo/model); repeat it to "
        "score several with one engine",
    )
    parser.add_argument(
        "--out", type=Path, help="the metrics file (default: run.output_dir/run.name/evaluation.json)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing metrics file")
    return parser


def request_from(args: argparse.Namespace) -> tuple[ExperimentConfig, list[Path], Path]:
    """The config, the checkpoint folders and the metrics file, refused (ConfigError) before anything
    loads when a folder is not a checkpoint the first one's engine can serve, or the file exists without
    --overwrite."""
    config = load_config(args.config, args.overrides)
    if config.model is None:  # an InstructFLIP config: no VLM policy to score
        raise ConfigError("launch/evaluate.py scores a VLM policy: give a config with a model section")
    repeated = sorted({str(m) for m in args.model if args.model.count(m) > 1})
    if repeated:
        raise ConfigError(
            f"--model {repeated[0]} is given twice: its results are keyed by the folder; give it once"
        )
    first = checkpoint_signature(args.model[0])
    for model_dir in args.model[1:]:
        if checkpoint_signature(model_dir) != first:
            raise ConfigError(
                f"--model {model_dir} differs from --model {args.model[0]} in architecture, tokenizer or weight "
                "shapes, and one engine serves every checkpoint: score it in a run of its own"
            )
    out = args.out or config.run_dir / "evaluation.json"
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: give the path of a JSON file")
    if out.exists() and not args.overwrite:
        raise ConfigError(f"{out} exists: pass --overwrite to replace it, or --out another file")
    return config, list(args.model), out


def checkpoint_signature(model_dir: Path) -> tuple[str, bytes | None, dict[str, list[int]]]:
    """What an engine started on one checkpoint needs of another to take its weights: the architecture, the
    tokenizer and every weight's shape (read from the safetensors headers, not the weights)."""
    from rft.models.loading import detect_arch

    weights = sorted(model_dir.glob("*.safetensors"))
    if not (model_dir / "config.json").is_file() or not weights:
        raise ConfigError(
            f"--model {model_dir} is not a checkpoint folder (no config.json or *.safetensors): give a model/ "
            "folder a job exported, e.g. runs/demo_cpu/sft_stage2/model"
        )
    try:
        arch = detect_arch(model_dir)
        shapes = weight_shapes(weights)
    except (ValueError, OSError) as error:  # json.JSONDecodeError and safetensors' errors are ValueErrors
        raise ConfigError(f"--model {model_dir} cannot be read: {error}") from error
    tokenizer = model_dir / "tokenizer.json"
    return arch, tokenizer.read_bytes() if tokenizer.is_file() else None, shapes


def weight_shapes(files: list[Path]) -> dict[str, list[int]]:
    from safetensors import safe_open

    shapes = {}
    for file in files:
        with safe_open(file, framework="pt") as weights:
            for name in weights.keys():  # noqa: SIM118 (safe_open has keys(), it is not iterable)
                shapes[name] = weights.get_slice(name).get_shape()
    return shapes


def run(config: ExperimentConfig, model_dirs: list[Path], out: Path) -> dict[str, dict]:
    """Each checkpoint's target-domain results, keyed by its folder as given; `out` is rewritten after each
    checkpoint, so a failure keeps the finished ones."""
    seed_everything(config.run.seed)
    splits = protocol_data(config.data)
    source = inprocess_source(config, model_dirs[0])
    results: dict[str, dict] = {}
    try:
        for model_dir in model_dirs:
            results[str(model_dir)] = evaluate_policy(model_dir, config, splits, source)
            print("\n".join(report_lines(str(model_dir), results[str(model_dir)])), flush=True)
            write_json(out, results)
    finally:
        source.close()
    return results


def inprocess_source(config: ExperimentConfig, model_dir: Path) -> Any:
    """One vLLM engine for every evaluation (and the demo's GRPO), with in-process rewards: each evaluation
    pushes its weights into it."""
    from reward_service import connect
    from rollout_server.inprocess import InProcessRollouts

    return InProcessRollouts(
        model_dir,
        tools=connect(config.reward_service.url, token_env=config.reward_service.token_env),
        max_model_len=config.rollout.max_model_len,
        max_tool_calls=config.grpo.max_tool_calls,
        image_size=config.data.image_size,
        seed=config.run.seed,
        gpu_memory_utilization=config.rollout.gpu_memory_utilization,
        tool_names=config.run.tool_names,
    )


def evaluate_policy(model_dir: Path, config: ExperimentConfig, splits: ProtocolData, source: Any) -> dict:
    """Fast- and final-answer metrics of the checkpoint in `model_dir` (pushed to the episode source)."""
    from rft.models.loading import detect_arch, load_policy

    model, processor = load_policy(model_dir, config.model.dtype)
    source.update_weights({name: tensor.detach().clone() for name, tensor in model.state_dict().items()})
    return score_targets(
        config,
        model=model,
        processor=processor,
        arch=detect_arch(model_dir),
        targets=splits.targets,
        source=source,
    )

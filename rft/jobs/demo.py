"""The CPU demo behind launch/demo.py: paper 003's whole pipeline at toy scale in one process. The base
model is evaluated, the templated writer annotates the source images, SFT stages 1 and 2 and GRPO train
(rft.jobs.sft, rft.jobs.grpo), and the policy is evaluated after each; one in-process vLLM engine serves
every evaluation and GRPO's episodes. Writes under run.output_dir/run.name/."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rft.config import ConfigError, ExperimentConfig, load_config, save_resolved_config
from rft.errors import RunSetupError
from rft.jobs import grpo, sft
from rft.jobs.evaluate import evaluate_policy, inprocess_source
from rft.jobs.steps import base_model_dir, config_parser, protocol_data, seed_everything
from rft.outputs import write_json

if TYPE_CHECKING:
    from rft.data.protocols import ProtocolData


def parser(doc: str) -> argparse.ArgumentParser:
    """The launcher's parser; `doc` (its docstring) is the help text."""
    return config_parser(doc, example="grpo.max_steps=5")


def config_from(args: argparse.Namespace) -> ExperimentConfig:
    """The validated config, refused (ConfigError) when the demo cannot run it."""
    config = load_config(args.config, args.overrides)
    if config.model is None or (config.model.tiny_preset is None and config.model.path is None):
        raise ConfigError("the demo needs model.tiny_preset or model.path")
    check_demo_protocol(config.data.protocol)
    return config


def check_demo_protocol(name: str) -> None:
    """The demo's templated annotation reads one source selection of at most one split."""
    from rft.data.protocols import load_protocol

    sources = load_protocol(name).source
    if len(sources) != 1 or len(sources[0].splits or [None]) != 1:
        raise ConfigError(
            f"the demo annotates one source selection of one split, but protocol '{name}' trains on more; "
            "use data.protocol=synth_cross_domain, or run `rft annotate` and launch/sft.py yourself"
        )


def run(config: ExperimentConfig) -> dict[str, dict]:
    """Every stage's target-domain results, also written to metrics.json (the stages that finished, if one
    fails)."""
    save_resolved_config(config, config.run_dir)
    seed_everything(config.run.seed)
    splits = protocol_data(config.data)
    base_dir = base_model_dir(config.model, config.data.image_size)
    source = inprocess_source(config, base_dir)
    results: dict[str, dict] = {}
    try:
        run_stages(config, splits=splits, base_dir=base_dir, source=source, results=results)
    finally:
        source.close()
        write_json(config.run_dir / "metrics.json", results)
    return results


def run_stages(
    config: ExperimentConfig, *, splits: ProtocolData, base_dir: Path, source: Any, results: dict[str, dict]
) -> None:
    """Evaluate, annotate, SFT stages 1 and 2, evaluate, GRPO (which evaluates at the end), filling `results`
    and printing each stage's lines as soon as they exist."""
    results["base model"] = evaluate_policy(base_dir, config, splits, source)
    report(results)
    annotated = annotate(config, splits)
    sft_stage(config, 1, annotated)
    sft_model = sft_stage(config, 2, annotated)
    results["after SFT"] = evaluate_policy(sft_model, config, splits, source)
    report(results)
    report_format(config, held_out_format(sft_model, config, source=source, splits=splits))
    results["after GRPO"] = grpo.run(config, source=source, overwrite=True)
    report_curves(config)
    report(results)


def annotate(config: ExperimentConfig, splits: ProtocolData) -> Path:
    """Stage-1 and stage-2 conversations for the protocol's source images, by the templated writer."""
    from rft.annotate.cli import main as annotate_main

    (selection,) = splits.protocol.source  # one selection of one split (checked by `config_from`)
    root = splits.roots[selection.dataset]
    out = config.run_dir / "annotated"
    argv = ["--data", str(root), "--out", str(out), "--templated", "--quiet"]
    argv += ["--tasks", "knowledge_transfer", "tool_trajectory", "--tools", ",".join(config.run.tool_names)]
    if selection.splits:
        (split,) = selection.splits
        argv += ["--split", split]
    if selection.domains:
        argv += ["--domains", *selection.domains]
    if annotate_main(argv) != 0:
        raise RunSetupError(f"the templated annotation of {root} failed (see above)")
    return out


def held_out_format(
    model_dir: Path,
    config: ExperimentConfig,
    *,
    samples: int = 48,
    max_tokens: int | None = None,
    source: Any = None,
    splits: ProtocolData | None = None,
) -> dict:
    """rft.jobs.format_check's figures for greedy episodes of `model_dir` on the first `samples` held-out
    source images (the dev split). `source`: an episode source already holding `model_dir`'s weights (the
    demo's); None starts one for the call."""
    from rft.jobs.format_check import format_rates

    splits = splits or protocol_data(config.data)
    held_out = splits.dev if splits.dev is not None else splits.source
    rows = held_out.select(range(min(samples, len(held_out))))
    own_source = source is None
    source = inprocess_source(config, model_dir) if own_source else source
    try:
        return format_rates(
            source,
            list(rows["image"]),
            list(rows["label"]),
            max_tokens=max_tokens or config.grpo.max_completion_length,
            max_tool_calls=config.grpo.max_tool_calls,
        )
    finally:
        if own_source:
            source.close()


def report_format(config: ExperimentConfig, summary: dict) -> None:
    """Print the stage-2 model's format figures and keep them in format.json."""
    from rft.jobs.format_check import table_lines

    print("\n".join(table_lines("[after SFT] format", summary)), flush=True)
    write_json(config.run_dir / "format.json", summary)


def report_curves(config: ExperimentConfig) -> None:
    """Print how GRPO's reward, correct-answer and tool curves moved (first against last quarter of the steps,
    next to their step-to-step noise) and keep the figures in curves.json."""
    import json
    from dataclasses import asdict

    from rft.eval.curves import change_lines, learning_changes

    log = json.loads((config.run_dir / "grpo" / "train_log.json").read_text())
    changes = learning_changes(log)
    print("\n".join(change_lines("[GRPO] curves", changes)), flush=True)
    write_json(
        config.run_dir / "curves.json",
        {c.key: {**asdict(c), "change": c.change, "rose": c.rose} for c in changes},
    )


def sft_stage(config: ExperimentConfig, stage: int, data_dir: Path) -> Path:
    """The SFT stage on the annotated conversations, started afresh on a rerun of the demo; its model."""
    staged = config.model_copy(
        update={"sft": config.sft.model_copy(update={"stage": stage, "data_dir": data_dir})}
    )
    return sft.run(staged, overwrite=True)


def report(results: dict[str, dict]) -> None:
    """Print the newest stage's lines (so a long demo shows each result as soon as it exists)."""
    stage = list(results)[-1]
    print("\n".join(grpo.report_lines(stage, results[stage])), flush=True)


def summary_lines(results: dict[str, dict]) -> list[str]:
    """Every stage's lines, the table the README shows."""
    return [line for stage in results for line in grpo.report_lines(stage, results[stage])]


def print_summary(config: ExperimentConfig, results: dict[str, dict]) -> None:
    print("\nsummary:\n" + "\n".join(summary_lines(results)))
    print(f"outputs: {config.run_dir}")

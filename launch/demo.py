"""The CPU demo, the README's main job: `python launch/demo.py --config demo_cpu [key=value ...]`.

Paper 003's whole pipeline at toy scale on the synthetic cross-domain benchmark, on the CPU:
  1. generate the benchmark and build the tiny random-initialised policy;
  2. evaluate the base model on the protocol's target domains;
  3. write the SFT conversations with the templated annotation writer (`rft annotate --templated`);
  4. SFT stage 1 (knowledge transfer) and stage 2 (tool-call format injection, Eq. 8): launch/sft.py;
  5. evaluate after SFT;
  6. DT-GRPO with vLLM in this process and in-process rewards: launch/grpo.py, which evaluates at the end.
Each evaluation prints HTER and AUC per target domain for the fast answer (first turn) and the final answer
(after greedy tool calls), both scored by P(Spoof) over the Real/Spoof answer tokens (paper 003).
Outputs go to run.output_dir/run.name/: metrics.json (every stage), annotated/, sft_stage1/, sft_stage2/,
grpo/; a rerun replaces the stages of the earlier one (the annotation is reused). On GPUs the stages are
`launch/sft.py --stage 1|2` and `accelerate launch launch/grpo.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from launch import grpo as grpo_launcher
from launch import sft as sft_launcher
from rft.config import ConfigError, ExperimentConfig, load_config, save_resolved_config
from rft.errors import ResumeError, RunSetupError

STAGES = ("base model", "after SFT", "after GRPO")


def parse(argv: list[str] | None) -> ExperimentConfig:
    head, _, tail = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(
        description=head, epilog=tail, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="a config name from configs/ or a YAML path")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. grpo.max_steps=5")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)
    if config.model.tiny_preset is None and config.model.path is None:
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


def annotate(config: ExperimentConfig, splits: Any) -> Path:
    """Stage-1 and stage-2 conversations for the protocol's source images, by the templated writer."""
    from rft.annotate.cli import main as annotate_main

    (selection,) = splits.protocol.source  # one selection of one split (checked by `parse`)
    root = splits.roots[selection.dataset]
    out = config.run_dir / "annotated"
    argv = ["--data", str(root), "--out", str(out), "--templated", "--quiet"]
    argv += ["--tasks", "knowledge_transfer", "tool_trajectory"]
    if selection.splits:
        (split,) = selection.splits
        argv += ["--split", split]
    if selection.domains:
        argv += ["--domains", *selection.domains]
    if annotate_main(argv) != 0:
        raise RunSetupError(f"the templated annotation of {root} failed (see above)")
    return out


def evaluate_policy(model_dir: Path, config: ExperimentConfig, splits: Any, source: Any) -> dict:
    """Fast- and final-answer metrics of the checkpoint in `model_dir` (pushed to the episode source)."""
    from rft.eval.target import evaluate_targets
    from rft.models.loading import detect_arch, load_policy

    model, processor = load_policy(model_dir, config.model.dtype)
    source.update_weights({name: tensor.detach().clone() for name, tensor in model.state_dict().items()})
    return evaluate_targets(
        model=model,
        processor=processor,
        arch=detect_arch(model_dir),
        targets=splits.targets,
        method=config.grpo.method,
        episode_source=source,
        batch_size=config.eval.batch_size,
        max_samples=config.eval.max_samples,
        seed=config.run.seed,
        final_answer=config.eval.final_answer,
        max_completion_length=config.grpo.max_completion_length,
    )


def sft_stage(config: ExperimentConfig, stage: int, data_dir: Path) -> Path:
    staged = config.model_copy(
        update={"sft": config.sft.model_copy(update={"stage": stage, "data_dir": data_dir})}
    )
    return sft_launcher.run(staged, overwrite=True)  # a rerun of the demo starts it afresh


def run(config: ExperimentConfig) -> dict[str, dict]:
    # Imported here so that a bad config fails in a second, before any heavy import or model load.
    from reward_service import connect
    from rft.data.prepare import prepare_protocol
    from rft.models.loading import resolve_model_dir
    from rollout_server.inprocess import InProcessRollouts

    save_resolved_config(config, config.run_dir)
    grpo_launcher.seed_everything(config.run.seed)
    data, synth = config.data, config.data.synthetic
    generation = {
        "cache_dir": data.cache_dir,
        "image_size": data.image_size,
        "n_per_domain": synth.n_per_domain,
        "seed": synth.seed,
        "attack_strength": synth.attack_strength,
        "workers": synth.workers,
    }
    splits = prepare_protocol(protocol=data.protocol, roots=data.roots, **generation)
    base_dir = resolve_model_dir(
        path=config.model.path,
        tiny_preset=config.model.tiny_preset,
        arch=config.model.arch,
        cache_dir=config.model.cache_dir,
        image_size=data.image_size,
    )
    # One vLLM engine for every stage: each evaluation and GRPO push their weights into it.
    source = InProcessRollouts(
        base_dir,
        tools=connect(config.reward_service.url, token_env=config.reward_service.token_env),
        max_model_len=config.rollout.max_model_len,
        max_tool_calls=config.grpo.max_tool_calls,
        image_size=data.image_size,
        seed=config.run.seed,
        gpu_memory_utilization=config.rollout.gpu_memory_utilization,
    )
    results: dict[str, dict] = {}
    try:
        results["base model"] = evaluate_policy(base_dir, config, splits, source)
        report(results)
        annotated = annotate(config, splits)
        for stage in (1, 2):
            sft_stage(config, stage, annotated)
        results["after SFT"] = evaluate_policy(
            config.run_dir / "sft_stage2" / "model", config, splits, source
        )
        report(results)
        results["after GRPO"] = grpo_launcher.run(config, source=source, overwrite=True)
        report(results)
    finally:
        source.close()
        (config.run_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    return results


def report(results: dict[str, dict]) -> None:
    """Print the newest stage's lines (so a long demo shows each result as soon as it exists)."""
    stage = list(results)[-1]
    print("\n".join(grpo_launcher.report_lines(stage, results[stage])), flush=True)


def summary_lines(results: dict[str, dict]) -> list[str]:
    """Every stage's lines, the table the README shows."""
    return [line for stage in results for line in grpo_launcher.report_lines(stage, results[stage])]


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse(argv)
        results = run(config)
    except (ConfigError, ResumeError, RunSetupError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\nsummary:\n" + "\n".join(summary_lines(results)))
    print(f"outputs: {config.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

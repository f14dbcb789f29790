"""GRPO on the rollout server: `accelerate launch launch/grpo.py --config NAME [--resume] [key=value ...]`.

Trains grpo.method (dt_grpo or st_grpo: paper 003 over multi-turn tool episodes; rft_fas: paper 001's
single-turn GRPO) on the protocol's source split, starting from grpo.init_from (the run's SFT stage-2 model
by default). Episodes come from the rollout servers at rollout.urls (start them with `python -m
rollout_server`, token in $RFT_ROLLOUT_TOKEN) or, with rollout.mode=inprocess, from vLLM in this process;
rewards from reward_service.url. Writes under run.output_dir/run.name/grpo/: checkpoints/ (every
grpo.save_steps; --resume continues from the newest), tensorboard/, rollouts/ (every episode with its
images and rewards), eval/ (target-domain metrics every eval.steps and at the end), metrics.json and
model/ (a plain Hugging Face folder). A fresh start over an earlier run's outputs is refused: continue it
with --resume or replace it with --overwrite. docs/TRAINING.md has the details.

examples:
  accelerate launch --config_file deploy/accelerate/zero3_8gpu.yaml launch/grpo.py --config cefa_to_hqwmca
  python launch/grpo.py --config demo_cpu rollout.mode=inprocess grpo.max_steps=5
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from rft.config import ConfigError, ExperimentConfig, load_config, save_resolved_config
from rft.errors import ResumeError


def parse(argv: list[str] | None) -> tuple[ExperimentConfig, str | None, bool]:
    """The validated config, the --resume request (None, "latest" or a checkpoint folder) and --overwrite."""
    head, _, tail = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(
        description=head, epilog=tail, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="a config name from configs/ or a YAML path")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue from the newest GRPO checkpoint")
    resume.add_argument("--resume-from", metavar="CHECKPOINT", help="continue from this checkpoint folder")
    resume.add_argument(
        "--overwrite", action="store_true", help="start afresh, deleting an earlier run's grpo/ outputs"
    )
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. grpo.max_steps=50")
    args = parser.parse_args(argv)
    resume = "latest" if args.resume else args.resume_from
    return load_config(args.config, args.overrides), resume, args.overwrite


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def grpo_dir(config: ExperimentConfig) -> Path:
    return config.run_dir / "grpo"


def run(
    config: ExperimentConfig, resume: str | None = None, source: Any = None, overwrite: bool = False
) -> dict:
    """Train, evaluate on the target domains, export; returns the final evaluation. `source` reuses an
    episode source the caller built (the demo's); otherwise one is built from the rollout section.
    `overwrite` deletes an earlier run's outputs first (a fresh start over them is refused otherwise)."""
    from accelerate import PartialState

    from reward_service import connect
    from rft.data.prepare import prepare_protocol
    from rft.eval.target import evaluate_targets
    from rft.jobs.connect import check_rollout_settings, episode_source
    from rft.methods import method_named
    from rft.models.loading import detect_arch, load_policy, resolve_model_dir
    from rft.trainers.checkpoints import export_model
    from rft.trainers.grpo_eval import TargetEvaluation
    from rft.trainers.grpo_recipes import accumulation_steps
    from rft.trainers.grpo_setup import (
        build_grpo_trainer,
        reward_coefficients,
        training_arguments,
        training_examples,
    )
    from rft.trainers.run_folders import check_fresh_start, policy_dir, remove_earlier_run, resume_checkpoint

    grpo, out = config.grpo, grpo_dir(config)
    # cpu as TrainingArguments(use_cpu) below: without it, processes started by torchrun on a machine
    # without CUDA each see a single-process state, and main_process_first() guards nothing.
    state = PartialState(cpu=not torch.cuda.is_available())
    # Everything a config can get wrong is checked before data is generated or a model loaded.
    reward_coefficients(grpo.method, grpo.coefficients)
    accumulation = accumulation_steps(
        generation_batch_size=grpo.generation_batch_size,
        per_device_train_batch_size=grpo.per_device_train_batch_size,
        gradient_accumulation_steps=grpo.gradient_accumulation_steps,
        num_processes=state.num_processes,
    )
    resume_from = resume_checkpoint(resume, out / "checkpoints")
    clear_earlier_run = check_fresh_start(out, resume=resume, overwrite=overwrite)
    if source is None and state.is_main_process:
        check_rollout_settings(config.rollout)
    stage_model = (
        None if grpo.init_from == "model" else policy_dir(init_from=grpo.init_from, run_dir=config.run_dir)
    )
    remove_earlier_run(out, remove=clear_earlier_run, state=state)
    with state.main_process_first():  # one process generates or imports the data, the others reuse it
        data, synth = config.data, config.data.synthetic
        splits = prepare_protocol(
            protocol=data.protocol,
            roots=data.roots,
            cache_dir=data.cache_dir,
            image_size=data.image_size,
            n_per_domain=synth.n_per_domain,
            seed=synth.seed,
            attack_strength=synth.attack_strength,
            workers=synth.workers,
        )
        model_dir = stage_model or resolve_model_dir(
            path=config.model.path,
            tiny_preset=config.model.tiny_preset,
            arch=config.model.arch,
            cache_dir=config.model.cache_dir,
            image_size=config.data.image_size,
        )
    if state.is_main_process:
        save_resolved_config(config, out)
    seed_everything(config.run.seed)
    # The arguments come first: under a ZeRO-3 accelerate config they switch on partitioned loading.
    args = training_arguments(
        grpo, output_dir=out / "checkpoints", seed=config.run.seed, gradient_accumulation_steps=accumulation
    )
    model, processor = load_policy(model_dir, config.model.dtype)
    if source is None and state.is_main_process:
        source = episode_source(
            config.rollout,
            model_dir=model_dir,
            max_tool_calls=grpo.max_tool_calls,
            image_size=data.image_size,
            tools=connect(config.reward_service.url, token_env=config.reward_service.token_env),
            seed=config.run.seed,
            tool_episodes=method_named(grpo.method).uses_tools,
        )

    def evaluate(trainer: Any) -> dict:
        return evaluate_targets(
            model=trainer.model,
            processor=processor,
            arch=detect_arch(model_dir),
            targets=splits.targets,
            method=grpo.method,
            episode_source=trainer.episode_source,
            accelerator=trainer.accelerator,
            batch_size=config.eval.batch_size,
            max_samples=config.eval.max_samples,
            seed=config.run.seed,
            final_answer=config.eval.final_answer,
            max_completion_length=grpo.max_completion_length,
        )

    evaluation = TargetEvaluation(evaluate=evaluate, every=config.eval.steps, out_dir=out / "eval")
    trainer = build_grpo_trainer(
        model=model,
        processor=processor,
        train_dataset=training_examples(splits.source),
        grpo=grpo,
        args=args,
        source=source,
        reward_scorer=connect(config.reward_service.url, token_env=config.reward_service.token_env),
        seed=config.run.seed,
        tensorboard_dir=out / "tensorboard" if grpo.report_to == "tensorboard" else None,
        rollouts_dir=out / "rollouts" if grpo.record_rollouts else None,
        callbacks=[evaluation],
    )
    evaluation.attach(trainer)
    trainer.train(resume_from_checkpoint=resume_from)
    # Exported before the final evaluation, so that an evaluation that fails does not cost the trained model.
    export_model(trainer, base_model_dir=model_dir, out_dir=out / "model", dtype=config.model.dtype)
    if state.is_main_process:
        (out / "train_log.json").write_text(json.dumps(trainer.state.log_history, indent=2))
    final = evaluation.run(trainer.state.global_step)
    if state.is_main_process:  # the log again, now with the final evaluation's entry
        (out / "train_log.json").write_text(json.dumps(trainer.state.log_history, indent=2))
        (out / "metrics.json").write_text(json.dumps(final, indent=2))
    return final


def report_lines(stage: str, results: dict) -> list[str]:
    """`[stage] target <domain> <answer>: HTER x%  AUC y%` for each target domain and scored answer."""
    lines = []
    for domain, result in results.items():
        for answer in ("fast", "final"):
            if answer in result:
                overall = result[answer]["overall"]
                lines.append(
                    f"[{stage}] target {domain} ({answer} answer): HTER {overall['hter'] * 100:.2f}%  "
                    f"AUC {overall['auc'] * 100:.2f}%"
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    from rft.errors import RunSetupError

    try:
        config, resume, overwrite = parse(argv)
        results = run(config, resume, overwrite=overwrite)
    except (ConfigError, ResumeError, RunSetupError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from accelerate import PartialState

    if PartialState().is_main_process:
        print("\n".join(report_lines("after GRPO", results)))
        print(f"outputs: {grpo_dir(config)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

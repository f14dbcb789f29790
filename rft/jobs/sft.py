"""The SFT job behind launch/sft.py (paper 003's stages 1 and 2): check the stored conversations and the run
folder, take the starting policy (stage 2 starts from stage 1's export), train, and export the stage's model.
Writes under run.output_dir/run.name/sft_stage<N>/."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rft.config import ExperimentConfig, save_resolved_config
from rft.jobs import steps
from rft.jobs.steps import (
    Request,
    base_model_dir,
    process_state,
    seed_everything,
    training_parser,
)
from rft.outputs import write_json


@dataclass(frozen=True)
class StagePlan:
    """What the checks settled before any model is built."""

    dataset: Any  # the stage's conversations (datasets.Dataset)
    resume_from: str | None
    clear_earlier_run: bool
    stage1_model: Path | None  # stage 2's starting point when it is stage 1's export


def parser(doc: str) -> argparse.ArgumentParser:
    """The launcher's parser; `doc` (its docstring) is the help text."""
    parser = training_parser(doc, outputs="an earlier run of the stage", example="sft.max_steps=50")
    parser.add_argument("--stage", type=int, choices=(1, 2), help="SFT stage (overrides sft.stage)")
    return parser


def request_from(args: argparse.Namespace) -> Request:
    """The parsed command line with its config loaded and validated (ConfigError otherwise); --stage sets
    sft.stage."""
    return steps.request_from(args, (f"sft.stage={args.stage}",) if args.stage else ())


def stage_dir(config: ExperimentConfig) -> Path:
    return config.run_dir / f"sft_stage{config.sft.stage}"


def run(config: ExperimentConfig, resume: str | None = None, overwrite: bool = False) -> Path:
    """Train the stage and export it; returns the exported model folder. `overwrite` deletes an earlier run
    of the stage first (a fresh start over one is refused otherwise)."""
    from rft.trainers.run_folders import remove_earlier_run

    out = stage_dir(config)
    plan = check_stage(config, resume=resume, overwrite=overwrite)
    state = process_state()
    remove_earlier_run(out, remove=plan.clear_earlier_run, state=state)
    if state.is_main_process:
        save_resolved_config(config, out)
    seed_everything(config.run.seed)
    with state.main_process_first():  # one process builds a tiny model, the others reuse it
        model_dir = plan.stage1_model or base_model_dir(config.model, config.data.image_size)
    trainer = build_trainer(config, model_dir=model_dir, dataset=plan.dataset, out=out)
    trainer.train(resume_from_checkpoint=plan.resume_from)
    return export(trainer, model_dir=model_dir, out=out, dtype=config.model.dtype)


def check_stage(config: ExperimentConfig, *, resume: str | None, overwrite: bool) -> StagePlan:
    """The stage's data (checked before any heavy import or model load: a wrong folder fails in a second),
    --resume, an earlier run of the stage, and stage 1's export when stage 2 starts from it."""
    from rft.trainers.run_folders import check_fresh_start, policy_dir, resume_checkpoint
    from rft.trainers.sft_data import load_sft_dataset

    sft, out = config.sft, stage_dir(config)
    dataset = load_sft_dataset(sft.data_dir, sft.stage)
    resume_from = resume_checkpoint(resume, out / "checkpoints")
    clear_earlier_run = check_fresh_start(out, resume=resume, overwrite=overwrite)
    from_stage1 = sft.stage == 2 and sft.stage2_init_from == "sft_stage1"
    stage1_model = policy_dir(init_from="sft_stage1", run_dir=config.run_dir) if from_stage1 else None
    return StagePlan(dataset, resume_from, clear_earlier_run, stage1_model)


def build_trainer(config: ExperimentConfig, *, model_dir: Path, dataset: Any, out: Path) -> Any:
    """The policy and its SFT trainer (checkpoints and TensorBoard events under `out`)."""
    from rft.models.loading import load_policy
    from rft.trainers.sft import build_sft_trainer

    model, processor = load_policy(model_dir, config.model.dtype)
    return build_sft_trainer(
        model=model,
        processor=processor,
        dataset=dataset,
        sft=config.sft,
        output_dir=out / "checkpoints",
        seed=config.run.seed,
        tensorboard_dir=out / "tensorboard",
        tools=config.run.tool_names,
    )


def export(trainer: Any, *, model_dir: Path, out: Path, dtype: str) -> Path:
    """The trained stage as a plain Hugging Face folder (out/model, LoRA merged), and the training log."""
    from rft.trainers.sft import export_model

    out_dir = export_model(trainer, base_model_dir=model_dir, out_dir=out / "model", dtype=dtype)
    if trainer.args.should_save:
        write_json(out / "train_log.json", trainer.state.log_history)
    return out_dir

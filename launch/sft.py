"""Paper 003's SFT stages: `python launch/sft.py --config NAME --stage 1|2 [--resume] [key=value ...]`.

Stage 1 (knowledge transfer) trains on `knowledge_transfer` conversations with plain nll; stage 2 (tool-call
format injection) trains on `tool_trajectory` conversations with Eq. 8 (first round weighted sft.alpha).
Both read stored conversations from sft.data_dir (a saved dataset, or the `rft annotate` output folder);
stage 2 starts from stage 1's export (sft.stage2_init_from). Both and write under run.output_dir/run.name/sft_stage<N>/:
checkpoints/ (every sft.save_steps; --resume continues from the newest, --resume-from from a given one,
--overwrite replaces an earlier run of the stage, over which a fresh start is refused), tensorboard/,
config.yaml, and model/, a plain Hugging Face folder (LoRA merged) that stage 2, GRPO and the
rollout server load as model.path. docs/SFT.md has the details.
On N GPUs: `accelerate launch [--config_file deepspeed.yaml] launch/sft.py ...`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from rft.config import ConfigError, ExperimentConfig, load_config, save_resolved_config
from rft.errors import ResumeError, RunSetupError
from rft.trainers.run_folders import check_fresh_start, policy_dir, remove_earlier_run, resume_checkpoint
from rft.trainers.sft_data import SFTDataError, load_sft_dataset


def stage_dir(config: ExperimentConfig) -> Path:
    return config.run_dir / f"sft_stage{config.sft.stage}"


def parse(argv: list[str] | None) -> tuple[ExperimentConfig, str | None, bool]:
    """The validated config, the --resume request (None, "latest" or a checkpoint folder) and --overwrite."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--config", required=True, help="a config name from configs/ or a YAML path")
    parser.add_argument("--stage", type=int, choices=(1, 2), help="SFT stage (overrides sft.stage)")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue from the stage's newest checkpoint")
    resume.add_argument("--resume-from", metavar="CHECKPOINT", help="continue from this checkpoint folder")
    resume.add_argument(
        "--overwrite", action="store_true", help="start afresh, deleting an earlier run of the stage"
    )
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. sft.max_steps=50")
    args = parser.parse_args(argv)
    overrides = list(args.overrides) + ([f"sft.stage={args.stage}"] if args.stage else [])
    resume = "latest" if args.resume else args.resume_from
    return load_config(args.config, overrides), resume, args.overwrite


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run(config: ExperimentConfig, resume: str | None = None, overwrite: bool = False) -> Path:
    """Train the stage and export it; `overwrite` deletes an earlier run of the stage first (a fresh start
    over one is refused otherwise)."""
    sft, out = config.sft, stage_dir(config)
    # The data is checked before any heavy import or model load: a wrong folder fails in a second.
    dataset = load_sft_dataset(sft.data_dir, sft.stage)
    checkpoints_dir = out / "checkpoints"
    resume_from = resume_checkpoint(resume, checkpoints_dir)
    clear_earlier_run = check_fresh_start(out, resume=resume, overwrite=overwrite)
    from_stage1 = sft.stage == 2 and sft.stage2_init_from == "sft_stage1"
    stage1_model = policy_dir(init_from="sft_stage1", run_dir=config.run_dir) if from_stage1 else None

    from accelerate import PartialState

    from rft.models.loading import load_policy, resolve_model_dir
    from rft.trainers.sft import build_sft_trainer, export_model

    # cpu as in TrainingArguments(use_cpu): without it, processes started by torchrun on a machine without
    # CUDA each believe they are alone.
    state = PartialState(cpu=not torch.cuda.is_available())
    remove_earlier_run(out, remove=clear_earlier_run, state=state)
    save_resolved_config(config, out)
    seed_everything(config.run.seed)
    with state.main_process_first():  # one process builds a tiny model, the others reuse it
        model_dir = stage1_model or resolve_model_dir(
            path=config.model.path,
            tiny_preset=config.model.tiny_preset,
            arch=config.model.arch,
            cache_dir=config.model.cache_dir,
            image_size=config.data.image_size,
        )
    model, processor = load_policy(model_dir, config.model.dtype)
    trainer = build_sft_trainer(
        model=model,
        processor=processor,
        dataset=dataset,
        sft=sft,
        output_dir=checkpoints_dir,
        seed=config.run.seed,
        tensorboard_dir=out / "tensorboard",
    )
    trainer.train(resume_from_checkpoint=resume_from)
    out_dir = export_model(trainer, base_model_dir=model_dir, out_dir=out / "model", dtype=config.model.dtype)
    if trainer.args.should_save:
        (out / "train_log.json").write_text(json.dumps(trainer.state.log_history, indent=2))
    return out_dir


def main(argv: list[str] | None = None) -> int:
    try:
        config, resume, overwrite = parse(argv)
        out_dir = run(config, resume, overwrite=overwrite)
    except (ConfigError, SFTDataError, ResumeError, RunSetupError) as error:  # one line, no traceback
        kind = {ConfigError: "config", SFTDataError: "data", ResumeError: "resume", RunSetupError: "setup"}[
            type(error)
        ]
        print(f"{kind} error: {error}", file=sys.stderr)
        return 2
    print(f"SFT stage {config.sft.stage} done; model: {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

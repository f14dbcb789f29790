"""The caption-supervised VLM job behind launch/caption.py (paper 002): check the captions and the run
folder, train the dual objective (Eq. 1), export the model, and evaluate the head and the judged
explanations on the protocol's dev and target sets.

Writes under run.output_dir/run.name/caption/: checkpoints/, tensorboard/ (loss, loss_cls, loss_caption),
config.yaml, train_log.json, model/ (a Hugging Face folder, LoRA merged, plus vision_cls_head.*), and eval/
(head/<set>.csv and explanation/<target>.csv per-sample scores in the common format that launch/compare.py
reads, explanations.jsonl, metrics.json). Without caption.data_dir, templated captions of the protocol's
source images are written first to run.output_dir/run.name/caption_annotated/ (`rft annotate --templated`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rft.config import ExperimentConfig, save_resolved_config
from rft.errors import RunSetupError
from rft.jobs import steps
from rft.jobs.steps import Request, base_model_dir, process_state, protocol_data, seed_everything
from rft.outputs import write_json

CAPTION_TASKS = ("caption_vanilla", "caption_reasoning")


@dataclass(frozen=True)
class Plan:
    """What the checks settled before any model is built."""

    resume_from: str | None
    clear_earlier_run: bool


def parser(doc: str) -> argparse.ArgumentParser:
    """The launcher's parser; `doc` (its docstring) is the help text."""
    return steps.training_parser(doc, outputs="an earlier caption run", example="caption.captions=reasoning")


def request_from(args: argparse.Namespace) -> Request:
    return steps.request_from(args)


def caption_dir(config: ExperimentConfig) -> Path:
    return config.run_dir / "caption"


def run(config: ExperimentConfig, resume: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train, export, evaluate; returns the evaluation (also in caption/eval/metrics.json)."""
    from rft.trainers.run_folders import remove_earlier_run

    out = caption_dir(config)
    plan = check(config, resume=resume, overwrite=overwrite)
    state = process_state()
    remove_earlier_run(out, remove=plan.clear_earlier_run, state=state)
    if state.is_main_process:
        save_resolved_config(config, out)
    seed_everything(config.run.seed)
    splits = protocol_data(config.data)
    with state.main_process_first():  # one process annotates and builds a tiny model, the others reuse them
        data_dir = config.caption.data_dir or annotate_captions(config, splits)
        model_dir = base_model_dir(config.model, config.data.image_size)
    trainer = build_trainer(config, model_dir=model_dir, data_dir=data_dir, out=out)
    trainer.train(resume_from_checkpoint=plan.resume_from)
    exported = export(trainer, model_dir=model_dir, out=out, dtype=config.model.dtype)
    if not state.is_main_process:
        return {}
    return evaluate(config, exported, splits, out / "eval")


def check(config: ExperimentConfig, *, resume: str | None, overwrite: bool) -> Plan:
    """The captions (when given), --resume and an earlier run, checked before any model is loaded."""
    from rft.baselines.caption.data import load_caption_dataset
    from rft.trainers.run_folders import check_fresh_start, resume_checkpoint

    out = caption_dir(config)
    if config.caption.data_dir is not None:
        load_caption_dataset(config.caption.data_dir, config.caption.captions, config.run.seed)
    else:
        check_one_source(config.data.protocol)
    resume_from = resume_checkpoint(resume, out / "checkpoints")
    return Plan(resume_from, check_fresh_start(out, resume=resume, overwrite=overwrite))


def check_one_source(protocol: str) -> None:
    from rft.data.protocols import load_protocol

    sources = load_protocol(protocol).source
    if len(sources) != 1 or len(sources[0].splits or [None]) != 1:
        raise RunSetupError(
            f"caption.data_dir is not set and protocol '{protocol}' trains on several sources; run `rft "
            "annotate --tasks caption_vanilla caption_reasoning` on its source data and set caption.data_dir"
        )


def annotate_captions(config: ExperimentConfig, splits: Any) -> Path:
    """Templated vanilla and reasoning captions of the protocol's (single) source selection."""
    from rft.annotate.cli import main as annotate_main

    (selection,) = splits.protocol.source
    out = config.run_dir / "caption_annotated"
    argv = ["--data", str(splits.roots[selection.dataset]), "--out", str(out), "--templated", "--quiet"]
    argv += ["--tasks", *CAPTION_TASKS]
    if selection.splits:
        argv += ["--split", selection.splits[0]]
    if selection.domains:
        argv += ["--domains", *selection.domains]
    if annotate_main(argv) != 0:
        raise RunSetupError(f"the templated captions of {splits.roots[selection.dataset]} failed (see above)")
    return out


def build_trainer(config: ExperimentConfig, *, model_dir: Path, data_dir: Path, out: Path) -> Any:
    from rft.baselines.caption.data import load_caption_dataset
    from rft.baselines.caption.model import build_caption_model, lora_config
    from rft.baselines.caption.trainer import build_caption_trainer
    from rft.models.loading import detect_arch, load_policy

    caption = config.caption
    dataset = load_caption_dataset(data_dir, caption.captions, config.run.seed)
    vlm, processor = load_policy(model_dir, config.model.dtype)
    arch = detect_arch(model_dir)
    lora = lora_config(
        arch,
        rank=caption.lora_rank,
        alpha=caption.lora_alpha,
        dropout=caption.lora_dropout,
        target_modules=caption.lora_target_modules,
    )
    model = build_caption_model(
        vlm, arch, lora, cls_weight=caption.cls_weight, caption_weight=caption.caption_weight
    )
    return build_caption_trainer(
        model=model,
        processor=processor,
        dataset=dataset,
        caption=caption,
        output_dir=out / "checkpoints",
        seed=config.run.seed,
        tensorboard_dir=out / "tensorboard",
    )


def export(trainer: Any, *, model_dir: Path, out: Path, dtype: str) -> Path:
    from rft.baselines.caption.trainer import export_caption_model

    exported = out / "model"
    if trainer.args.should_save:
        export_caption_model(
            trainer.accelerator.unwrap_model(trainer.model),
            trainer.processing_class,
            base_model_dir=model_dir,
            out_dir=exported,
            dtype=dtype,
        )
        write_json(out / "train_log.json", trainer.state.log_history)
    trainer.accelerator.wait_for_everyone()
    return exported


def evaluate(config: ExperimentConfig, model_dir: Path, splits: Any, out: Path) -> dict[str, Any]:
    """The exported model's head scores and judged explanations on dev and every target (main process)."""
    from rft.baselines.caption.judge import make_judge
    from rft.baselines.caption.model import load_caption_model
    from rft.baselines.caption.predict import CaptionPredictor, evaluate_sets
    from rft.eval.score_files import DEV_SET
    from rft.models.conversation import ConversationTokenizer

    caption = config.caption
    model, processor = load_caption_model(model_dir, config.model.dtype)
    tokenizer = ConversationTokenizer(processor, model.arch, tools=[])
    predictor = CaptionPredictor(model, tokenizer, caption.explanation_prompt, caption.max_new_tokens)
    judge = None
    if caption.explain:
        judge = make_judge(
            caption.judge,
            url=caption.judge_url,
            model=caption.judge_model,
            api_key_env=caption.judge_api_key_env,
        )
    sets = {**({DEV_SET: splits.dev} if splits.dev is not None else {}), **splits.targets}
    result = evaluate_sets(
        predictor, sets, out_dir=out, judge=judge, max_samples=config.eval.max_samples, seed=config.run.seed
    )
    write_json(out / "metrics.json", result)
    return result

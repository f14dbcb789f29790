"""Checkpoints for the project's trainers (SFT and GRPO): written atomically, resumed with every weight,
and exported as a plain Hugging Face folder.

A checkpoint is Trainer's (model or adapter, optimizer, scheduler, RNG states, trainer state with the data
position) written into a staging folder and renamed to `checkpoint-N` when complete, so `--resume` never
meets a half-written one. Resuming full weights goes through `from_pretrained` (see
`AtomicCheckpoints.load_checkpoint`). Trainer's private checkpoint methods are reached through
rft.trainers.trl_adapter's `CheckpointHooks`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import is_peft_model
from peft import PeftModel
from transformers import AutoModelForImageTextToText, PreTrainedModel, Trainer
from transformers.integrations import TensorBoardCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint, rotate_checkpoints
from transformers.utils import ADAPTER_SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from rft.models.loading import DTYPES
from rft.trainers.trl_adapter import CheckpointHooks

# A crash while saving leaves its half-written checkpoint here, where neither `--resume` nor
# `get_last_checkpoint` (which match `checkpoint-N`) look.
STAGING_DIR = ".checkpoint-staging"


class AtomicCheckpoints(CheckpointHooks):
    """Mixin for a transformers `Trainer` subclass (listed before it): atomic checkpoints and exact full-weight
    resume."""

    _staging_checkpoint = False

    def load_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        """Trainer's resume, except for full weights saved by `save_pretrained`: those are written in the
        checkpoint's original key layout (transformers 5 `save_original_format`), which Trainer reads back
        with a non-strict `load_state_dict`; for VLMs whose keys were renamed (Qwen2.5-VL, InternVL) nothing
        matches and training silently restarts from the base weights. Loading through `from_pretrained`
        applies the renaming; the strict load then proves every weight was restored."""
        model = model if model is not None else self.model
        if is_peft_model(model) or self.is_fsdp_enabled or not has_full_weights(Path(resume_from_checkpoint)):
            super().load_checkpoint(resume_from_checkpoint, model)
            return
        dtype = next(model.parameters()).dtype
        saved = AutoModelForImageTextToText.from_pretrained(
            resume_from_checkpoint, dtype=dtype, local_files_only=True
        )
        model.load_state_dict(saved.state_dict(), strict=True)

    def checkpoint_output_dir(self, trial: Any) -> str:
        if self._staging_checkpoint:
            return str(Path(self.args.output_dir) / STAGING_DIR)
        return super().checkpoint_output_dir(trial)

    def save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        """Trainer's checkpoint (model or adapter, optimizer, scheduler, RNG, trainer state) written into a
        staging folder, then renamed to `checkpoint-N`: a checkpoint either exists whole or not at all."""
        output_dir = Path(self.args.output_dir)
        staging = output_dir / STAGING_DIR
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)  # leftovers of a save that crashed
        self.accelerator.wait_for_everyone()
        self._staging_checkpoint = True
        try:
            super().save_checkpoint(model, trial)
        finally:
            self._staging_checkpoint = False
        self.accelerator.wait_for_everyone()  # every rank has written its shards and RNG state
        if self.args.should_save:
            name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            replace_directory(staging / name, output_dir / name)
            shutil.rmtree(staging, ignore_errors=True)
            rotate_checkpoints(
                output_dir=str(output_dir),
                save_total_limit=self.args.save_total_limit,
                best_model_checkpoint=self.state.best_model_checkpoint,
                use_mtime=False,
            )
        self.accelerator.wait_for_everyone()


def has_full_weights(checkpoint: Path) -> bool:
    return (checkpoint / SAFE_WEIGHTS_NAME).is_file() or (checkpoint / SAFE_WEIGHTS_INDEX_NAME).is_file()


def replace_directory(source: Path, target: Path) -> None:
    """Move `source` to `target` with one rename; an existing `target` is moved aside first and removed
    only after the new one is in place."""
    aside = target.with_name(target.name + ".old")
    if target.exists():
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(target, aside)
    os.replace(source, target)
    shutil.rmtree(aside, ignore_errors=True)


class TensorBoardIn(TensorBoardCallback):
    """TensorBoard events in a fixed folder, so that a resumed run continues the same curves."""

    def __init__(self, log_dir: Path) -> None:
        super().__init__()
        self.logging_dir = str(log_dir)


def use_bf16(precision: str) -> bool:
    if precision == "auto":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return precision == "bf16"


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint under `output_dir` (staging leftovers are never returned)."""
    if not Path(output_dir).is_dir():
        return None
    found = get_last_checkpoint(str(output_dir))
    return Path(found) if found else None


def export_model(trainer: Trainer, *, base_model_dir: Path, out_dir: Path, dtype: str = "float32") -> Path:
    """A plain Hugging Face model folder (weights, config, processor) that `load_policy`, the next stage and
    the rollout server load: LoRA is merged into the base weights. Written atomically like checkpoints."""
    out_dir = Path(out_dir)
    trained = out_dir.with_name(out_dir.name + ".trained")
    merged = out_dir.with_name(out_dir.name + ".merged")
    # Every rank takes part: under ZeRO-3 the weights are gathered for the save.
    trainer.save_model(str(trained))
    if trainer.args.should_save:
        refuse_missing_weights(trained, adapter=isinstance(trainer.model, PeftModel))
        if isinstance(trainer.model, PeftModel):  # `trained` holds the adapter only
            shutil.rmtree(merged, ignore_errors=True)
            merge_adapter(base_model_dir, trained, dtype).save_pretrained(merged)
            trainer.processing_class.save_pretrained(merged)
            replace_directory(merged, out_dir)
            shutil.rmtree(trained, ignore_errors=True)
        else:  # `trained` is the whole model already
            trainer.processing_class.save_pretrained(trained)
            replace_directory(trained, out_dir)
    trainer.accelerator.wait_for_everyone()
    return out_dir


def refuse_missing_weights(saved: Path, *, adapter: bool) -> None:
    # Under ZeRO-3 without 16-bit gathering, Trainer.save_model logs a warning and writes only DeepSpeed's
    # sharded checkpoint; a model folder without weights must not pass for a trained model.
    found = (saved / ADAPTER_SAFE_WEIGHTS_NAME).is_file() if adapter else has_full_weights(saved)
    if not found:
        raise RuntimeError(
            f"{saved}: Trainer wrote no {'adapter' if adapter else 'model'} weights; under DeepSpeed ZeRO-3 set "
            "zero3_save_16bit_model: true (accelerate) or stage3_gather_16bit_weights_on_model_save: true"
        )


def merge_adapter(base_model_dir: Path, adapter_dir: Path, dtype: str) -> PreTrainedModel:
    """The base model with the LoRA adapter folded into its weights (on the CPU, off the trainer's copy)."""
    base = AutoModelForImageTextToText.from_pretrained(
        base_model_dir, dtype=DTYPES[dtype], local_files_only=True
    )
    return PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()

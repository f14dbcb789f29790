"""Paper 002's training loop on transformers' Trainer: AdamW, the schedule, accumulation, gradient
checkpointing, bf16, DeepSpeed through accelerate, TensorBoard and resumable checkpoints are Trainer's. What
is added: the loss is the model's Eq. 1 (rft.baselines.caption.model), and each of its terms is logged on its
own curve (`loss_cls`, `loss_caption`, next to Trainer's `loss`, the weighted sum).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import datasets
import torch
from transformers import ProcessorMixin, Trainer, TrainerCallback, TrainingArguments

from rft.baselines.caption.data import CaptionCollator
from rft.baselines.caption.model import CaptionFASModel, save_head
from rft.config import CaptionConfig
from rft.trainers.checkpoints import TensorBoardIn, merge_adapter, replace_directory, use_bf16

LOSS_TERMS = ("loss_cls", "loss_caption")


class CaptionTrainer(Trainer):
    """Trainer whose loss is the dual objective; the mean of each loss term since the last log is logged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_terms: dict[str, list[float]] = {name: [] for name in LOSS_TERMS}

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        outputs = model(**inputs)
        if model.training:
            terms = torch.stack([outputs.cls_loss.detach(), outputs.caption_loss.detach()]).float()
            terms = self.accelerator.gather_for_metrics(terms).view(-1, len(LOSS_TERMS)).mean(dim=0)
            for name, value in zip(LOSS_TERMS, terms.tolist(), strict=True):
                self.loss_terms[name].append(value)
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training log: add the terms of the steps it covers
            for name, values in self.loss_terms.items():
                if values:
                    logs[name] = sum(values) / len(values)
                    values.clear()
        super().log(logs, start_time)


def training_arguments(caption: CaptionConfig, *, output_dir: Path, seed: int) -> TrainingArguments:
    """Trainer's arguments from the `caption` section."""
    return TrainingArguments(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        learning_rate=caption.learning_rate,
        weight_decay=caption.weight_decay,
        optim="adamw_torch",  # paper 002: AdamW
        lr_scheduler_type=caption.lr_scheduler_type,
        warmup_steps=caption.warmup_steps,
        per_device_train_batch_size=caption.per_device_train_batch_size,
        gradient_accumulation_steps=caption.gradient_accumulation_steps,
        max_steps=caption.max_steps,
        save_strategy="steps",
        save_steps=caption.save_steps,
        save_total_limit=caption.save_total_limit,
        logging_steps=caption.logging_steps,
        logging_first_step=True,
        report_to="none",  # TensorBoard is a callback with a fixed folder (build_caption_trainer)
        gradient_checkpointing=caption.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        bf16=use_bf16(caption.precision),
        use_cpu=not torch.cuda.is_available(),
        deepspeed=str(caption.deepspeed) if caption.deepspeed else None,
        remove_unused_columns=False,  # the collator reads the stored columns
        label_names=["labels", "class_labels"],
        # The head, lm_head and projector are plain tensors in the wrapper's state dict; safetensors refuses
        # shared storage, which the wrapper does not have.
        save_only_model=False,
    )


def build_caption_trainer(
    *,
    model: CaptionFASModel,
    processor: ProcessorMixin,
    dataset: datasets.Dataset,
    caption: CaptionConfig,
    output_dir: Path,
    seed: int,
    tensorboard_dir: Path | None = None,
) -> CaptionTrainer:
    """The trainer; checkpoints go to `output_dir`, TensorBoard events to `tensorboard_dir`."""
    tokenizer = processor.tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    callbacks: list[TrainerCallback] = []
    if caption.report_to == "tensorboard":
        callbacks.append(TensorBoardIn(tensorboard_dir or output_dir / "tensorboard"))
    return CaptionTrainer(
        model=model,
        args=training_arguments(caption, output_dir=output_dir, seed=seed),
        train_dataset=dataset,
        data_collator=CaptionCollator(processor, caption.max_length),
        processing_class=processor,
        callbacks=callbacks,
    )


def export_caption_model(
    model: CaptionFASModel, processor: ProcessorMixin, *, base_model_dir: Path, out_dir: Path, dtype: str
) -> Path:
    """The trained model as a caption model folder: a plain Hugging Face folder (LoRA merged into the base
    weights, the trained lm_head and projector in place) plus the head's weights. Written next to `out_dir`
    and renamed into place, so a crash leaves no half-written model."""
    adapter = out_dir.with_name(out_dir.name + ".adapter")
    staging = out_dir.with_name(out_dir.name + ".staging")
    for folder in (adapter, staging):
        shutil.rmtree(folder, ignore_errors=True)
    model.vlm.save_pretrained(str(adapter))
    merge_adapter(base_model_dir, adapter, dtype).save_pretrained(str(staging))
    processor.save_pretrained(str(staging))
    save_head(model.vision_cls_head, staging)
    replace_directory(staging, out_dir)
    shutil.rmtree(adapter, ignore_errors=True)
    return out_dir

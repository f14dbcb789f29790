"""Paper 003's SFT stages on TRL's SFTTrainer: knowledge transfer (stage 1, Eq. 7) and tool-call format
injection (stage 2, Eq. 8).

Eq. 8 (paper 003, section 3.2.2):

    L_nll(l) = - sum_t log pi(s_t^(l) | q^(<l), s^(<l), q^(l), s_<t^(l))
    L_2      = E [ alpha * L_nll(0) + (1 - alpha) * sum_{l=1..L} L_nll(l) ]

`MultiTurnSFTTrainer` is SFTTrainer with two changes: its collator (rft.trainers.sft_data) gives every
token the weight alpha (round 0, the fast answer), 1 - alpha (rounds 1..L) or 0 (system, user, tool and
image tokens), and `compute_loss` sums weight x token nll and divides by the number of assistant tokens in
the whole (accumulated, all-rank) batch, the normaliser SFTTrainer uses for its plain nll. Within a batch
that is Eq. 8 up to one positive constant, so the gradient direction is the paper's; the constant keeps the
loss on the per-token scale that the paper's learning rate (1e-4) is set for (docs/SFT.md). Stage 1 is the
same trainer with alpha = 1 on its single round: plain nll, Eq. 7.

Everything else is TRL and transformers: the fused LM head (per-token log-probabilities without the full
logits), PEFT wrapping, gradient checkpointing, bf16 autocast, DeepSpeed through accelerate, and the
checkpoints that `--resume` restores (model or adapter, optimizer, scheduler, RNG states, data position).
Checkpoints are made atomic here: written to a staging folder and renamed into place when complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import torch
import trl
from peft import LoraConfig
from transformers import PreTrainedModel, ProcessorMixin, TrainerCallback

from rft.config import SFTConfig
from rft.tools.schemas import tool_schemas
from rft.trainers.checkpoints import (
    STAGING_DIR,
    AtomicCheckpoints,
    TensorBoardIn,
    export_model,
    latest_checkpoint,
    use_bf16,
)
from rft.trainers.sft_data import MultiTurnSFTCollator
from rft.trainers.trl_adapter import metrics

__all__ = [
    "STAGING_DIR",
    "MultiTurnSFTTrainer",
    "build_sft_trainer",
    "export_model",
    "latest_checkpoint",
    "training_arguments",
    "weighted_nll",
]


def weighted_nll(
    token_nll: torch.Tensor, weights: torch.Tensor, normalizer: torch.Tensor | int
) -> torch.Tensor:
    """sum(weight x nll) / normalizer: Eq. 8 over a batch, up to the positive constant `normalizer`."""
    return (token_nll * weights.to(token_nll.dtype)).sum() / torch.as_tensor(normalizer).clamp(min=1)


class MultiTurnSFTTrainer(AtomicCheckpoints, trl.SFTTrainer):
    """SFTTrainer whose loss is paper 003's Eq. 8, with atomic checkpoints and per-round nll logging
    (`nll_first_round`, `nll_later_rounds`: mean token nll of round 0 and of rounds 1..L)."""

    def __init__(
        self,
        *,
        model: PreTrainedModel,
        args: trl.SFTConfig,
        train_dataset: datasets.Dataset,
        processing_class: ProcessorMixin,
        first_round_weight: float,
        max_length: int | None = None,
        peft_config: LoraConfig | None = None,
        callbacks: list[TrainerCallback] | None = None,
        tools: Sequence[str] | None = None,
    ) -> None:
        tokenizer = processing_class.tokenizer
        if tokenizer.pad_token is None:  # batches are padded; pads are never trained on (label -100)
            tokenizer.pad_token = tokenizer.eos_token
        super().__init__(
            model=model,
            args=args,
            # The system turn lists the run's tools (run.tools), as GRPO's and evaluation's prompts do.
            data_collator=MultiTurnSFTCollator(
                processing_class, first_round_weight, max_length, tools=tool_schemas(tools)
            ),
            train_dataset=train_dataset,
            processing_class=processing_class,
            peft_config=peft_config,
            callbacks=callbacks,
        )

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        mode = "train" if self.model.training else "eval"
        # Position t of the fused head's output scores token t + 1, so the weights shift like the labels.
        weights = inputs.pop("loss_weights")[:, 1:]
        turn = inputs.pop("assistant_turn")[:, 1:]
        outputs = model(**inputs, use_cache=False, fused_lm_head=True)
        token_nll = -outputs.log_probs  # zero where the label is ignored
        # `num_items_in_batch` counts the assistant tokens of every micro-batch of the optimizer step (and of
        # every rank), so accumulated steps sum to one batch-level normalisation, as in SFTTrainer.
        normalizer = outputs.label_mask.sum() if num_items_in_batch is None else num_items_in_batch
        loss = weighted_nll(token_nll, weights, normalizer)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # DDP averages gradients
        self._record_round_nll(mode, token_nll.detach(), turn)
        return (loss, outputs) if return_outputs else loss

    def _record_round_nll(self, mode: str, token_nll: torch.Tensor, turn: torch.Tensor) -> None:
        first, later = turn == 0, turn > 0
        sums = torch.stack([(token_nll * first).sum(), first.sum(), (token_nll * later).sum(), later.sum()])
        sums = self.accelerator.gather_for_metrics(sums.float()).view(-1, 4).sum(dim=0).tolist()
        for name, (total, count) in (("nll_first_round", sums[0:2]), ("nll_later_rounds", sums[2:4])):
            if count > 0:
                metrics(self, mode)[name].append(total / count)


def training_arguments(sft: SFTConfig, *, output_dir: Path, seed: int) -> trl.SFTConfig:
    """TRL/transformers arguments from the project's `sft` section."""
    return trl.SFTConfig(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        learning_rate=sft.learning_rate,
        weight_decay=sft.weight_decay,
        optim="adamw_torch",  # paper 003: AdamW throughout
        lr_scheduler_type=sft.lr_scheduler_type,
        warmup_steps=sft.warmup_steps,
        per_device_train_batch_size=sft.per_device_train_batch_size,
        gradient_accumulation_steps=sft.gradient_accumulation_steps,
        max_steps=stage_max_steps(sft),
        num_train_epochs=sft.num_train_epochs,
        save_strategy="steps",
        save_steps=sft.save_steps,
        save_total_limit=sft.save_total_limit,
        logging_steps=sft.logging_steps,
        logging_first_step=True,
        report_to="none",  # TensorBoard is added as a callback with a fixed folder (build_sft_trainer)
        gradient_checkpointing=sft.gradient_checkpointing,
        bf16=use_bf16(sft.precision),
        use_cpu=not torch.cuda.is_available(),
        deepspeed=str(sft.deepspeed) if sft.deepspeed else None,
        # The collator reads the stored columns and renders them itself; TRL must neither drop them nor
        # truncate (sft.max_length is enforced by the collator, by refusal).
        remove_unused_columns=False,
        max_length=None,
        dataset_kwargs={"skip_prepare_dataset": True},
    )


def stage_max_steps(sft: SFTConfig) -> int:
    """The stage's optimizer steps (-1: train `num_train_epochs`)."""
    if sft.stage == 2 and sft.stage2_max_steps is not None:
        return sft.stage2_max_steps
    return sft.max_steps if sft.max_steps is not None else -1


def lora_config(sft: SFTConfig) -> LoraConfig:
    return LoraConfig(
        r=sft.lora_rank,
        lora_alpha=sft.lora_alpha,
        lora_dropout=sft.lora_dropout,
        target_modules=sft.lora_target_modules,
        task_type="CAUSAL_LM",
    )


def stage_first_round_weight(sft: SFTConfig) -> float:
    """alpha for stage 2; stage 1 has one round, trained with plain nll (weight 1)."""
    return sft.alpha if sft.stage == 2 else 1.0


def build_sft_trainer(
    *,
    model: PreTrainedModel,
    processor: ProcessorMixin,
    dataset: datasets.Dataset,
    sft: SFTConfig,
    output_dir: Path,
    seed: int,
    tensorboard_dir: Path | None = None,
    tools: Sequence[str] | None = None,
) -> MultiTurnSFTTrainer:
    """The trainer for `sft.stage`; checkpoints go to `output_dir`, TensorBoard events to `tensorboard_dir`
    (default: `output_dir/tensorboard`) when `sft.report_to` is tensorboard."""
    callbacks: list[TrainerCallback] = []
    if sft.report_to == "tensorboard":
        callbacks.append(TensorBoardIn(tensorboard_dir or output_dir / "tensorboard"))
    return MultiTurnSFTTrainer(
        model=model,
        args=training_arguments(sft, output_dir=output_dir, seed=seed),
        train_dataset=dataset,
        processing_class=processor,
        first_round_weight=stage_first_round_weight(sft),
        max_length=sft.max_length,
        peft_config=lora_config(sft) if sft.use_lora else None,
        callbacks=callbacks,
        tools=tools,
    )

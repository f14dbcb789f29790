"""Building a GRPO run from the project's config sections: the starting policy, TRL's arguments, the reward
coefficients, the training examples and the trainer (used by launch/grpo.py and the
demo). Each function takes the flat values it needs, not the whole config."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import datasets
import torch
import trl
from peft import LoraConfig
from transformers import PreTrainedModel, ProcessorMixin, TrainerCallback

from rft.config import GRPOConfig, RewardCoefficients
from rft.errors import RunSetupError
from rft.methods import Coefficients, method_named
from rft.models.lora import LANGUAGE_MODEL_LORA_TARGETS
from rft.rollout.protocols import EpisodeSource, RewardScorer
from rft.trainers.checkpoints import AtomicCheckpoints, TensorBoardIn, use_bf16
from rft.trainers.grpo import EpisodeGRPOTrainer
from rft.trainers.rollout_records import RolloutRecorder


class CheckpointedGRPOTrainer(AtomicCheckpoints, EpisodeGRPOTrainer):
    """EpisodeGRPOTrainer with atomic checkpoints and exact full-weight resume (rft.trainers.checkpoints)."""


def reward_coefficients(
    method: str, coefficients: RewardCoefficients, tools: Sequence[str] | None = None
) -> Coefficients:
    """The paper's coefficients with the config's non-null values in their place (rft.methods' one
    override path); gamma_k is zero for a tool outside `tools` (run.tools)."""
    given = {k: v for k, v in coefficients.model_dump().items() if v is not None}
    try:
        return method_named(method).coefficients(given, tools)
    except (ValueError, TypeError) as error:
        raise RunSetupError(f"grpo.coefficients: {error}") from None


def training_arguments(
    grpo: GRPOConfig,
    *,
    output_dir: Path,
    seed: int,
    gradient_accumulation_steps: int,
    deepspeed: str | None = None,
) -> trl.GRPOConfig:
    """TRL's GRPOConfig from the project's `grpo` section (docs/TRAINING.md lists what each maps to);
    `gradient_accumulation_steps` from `accumulation_steps`."""
    report_to = "none" if grpo.report_to in ("tensorboard", "none") else grpo.report_to
    return trl.GRPOConfig(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        num_generations=grpo.num_generations,
        generation_batch_size=grpo.generation_batch_size,
        per_device_train_batch_size=grpo.per_device_train_batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        learning_rate=grpo.learning_rate,
        lr_scheduler_type=grpo.lr_scheduler_type,
        warmup_steps=grpo.warmup_steps,
        weight_decay=grpo.weight_decay,
        optim="adamw_torch",  # paper 003: AdamW
        beta=grpo.beta,
        epsilon=grpo.epsilon,
        loss_type=grpo.loss_type,
        scale_rewards="group",  # A_i divides by the group's std (Eq. 9)
        max_steps=grpo.max_steps,
        max_completion_length=grpo.max_completion_length,
        temperature=grpo.temperature,
        top_p=grpo.top_p,
        shuffle_dataset=not grpo.balanced_classes,  # balanced_examples shuffles, keeping each batch's balance
        disable_dropout=True,  # pi_theta and pi_theta_old must be the same function of the weights
        remove_unused_columns=False,  # the image and label columns feed the rollouts and rewards
        save_strategy="steps",
        save_steps=grpo.save_steps,
        save_total_limit=grpo.save_total_limit,
        logging_steps=grpo.logging_steps,
        logging_first_step=True,
        report_to=report_to,  # TensorBoard is a callback with a fixed folder (resumed runs continue it)
        log_completions=False,  # the rollout records hold every completion, with its images
        gradient_checkpointing=grpo.gradient_checkpointing,
        bf16=use_bf16(grpo.precision),
        use_cpu=not torch.cuda.is_available(),
        deepspeed=deepspeed,
    )


def lora_config(*, rank: int, alpha: int) -> LoraConfig:
    """LoRA on the language model's attention and MLP projections (the vision tower stays frozen)."""
    return LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=0.0,  # dropout would make pi_theta and pi_theta_old differ on the same weights
        target_modules=LANGUAGE_MODEL_LORA_TARGETS,
        task_type="CAUSAL_LM",
    )


RECORDED_COLUMNS = ("spoof_type", "domain")


def class_balanced_order(labels: Sequence[str], *, images_per_batch: int, seed: int) -> list[int]:
    """Indices of `labels` ('live' / 'spoof') in an order whose consecutive blocks of `images_per_batch` hold
    both classes in equal numbers (an odd block's extra image alternates between them); once a class runs
    out, the rest follow. Each class is shuffled by `seed`, so the order differs by run as TRL's shuffle would.

    The mean reward of a GRPO step over a few images swings with how many of them are live (a policy that
    leans to one answer scores one class better), noise that hides the curves' trend (docs/EFFICACY.md).
    """
    rng = random.Random(seed)
    pools = {name: [i for i, label in enumerate(labels) if label == name] for name in ("live", "spoof")}
    others = [i for i, label in enumerate(labels) if label not in pools]
    if others:
        raise RunSetupError(
            f"class-balanced batches need labels 'live' or 'spoof'; got {labels[others[0]]!r}"
        )
    for pool in pools.values():
        rng.shuffle(pool)
    live, spoof = pools["live"], pools["spoof"]
    order: list[int] = []
    batch = 0
    while live and spoof:
        extra_live = batch % 2 == 0
        n_live = min(len(live), images_per_batch // 2 + (images_per_batch % 2 if extra_live else 0))
        n_spoof = min(len(spoof), images_per_batch - n_live)
        order += live[:n_live] + spoof[:n_spoof]
        del live[:n_live], spoof[:n_spoof]
        batch += 1
    return order + live + spoof


def balanced_examples(examples: datasets.Dataset, *, images_per_batch: int, seed: int) -> datasets.Dataset:
    """`examples` (training_examples' output) in class_balanced_order, for a trainer that does not shuffle."""
    order = class_balanced_order(examples["label"], images_per_batch=images_per_batch, seed=seed)
    return examples.select(order)


def training_examples(source: datasets.Dataset) -> datasets.Dataset:
    """The protocol's source split as GRPO prompts: `image` and `label` ('live'/'spoof'), and the attack type
    and domain where the split has them (the rollout records carry them, for the dashboard's filters)."""
    missing = {"image", "label"} - set(source.column_names)
    if missing:
        raise RunSetupError(f"the protocol's source split lacks column(s) {sorted(missing)}")
    names = source.features["label"].names if hasattr(source.features["label"], "names") else None
    keep = source.select_columns(
        ["image", "label", *(c for c in RECORDED_COLUMNS if c in source.column_names)]
    )
    if names is not None:
        keep = keep.cast_column("label", datasets.Value("string")).map(
            lambda row: {"label": names[int(row["label"])]}
        )
    return keep


def build_grpo_trainer(
    *,
    model: PreTrainedModel,
    processor: ProcessorMixin,
    train_dataset: datasets.Dataset,
    grpo: GRPOConfig,
    args: trl.GRPOConfig,
    source: EpisodeSource | None,
    reward_scorer: RewardScorer | None,
    seed: int,
    tensorboard_dir: Path | None,
    rollouts_dir: Path | None,
    callbacks: list[TrainerCallback] | None = None,
    tools: Sequence[str] | None = None,
) -> CheckpointedGRPOTrainer:
    """The trainer for `grpo.method`. `source` is None on every process but the main one; `tools` is the
    run's tool set (run.tools), whose rewards alone count (`reward_coefficients`)."""
    extra: list[TrainerCallback] = list(callbacks or [])
    if tensorboard_dir is not None:
        extra.append(TensorBoardIn(tensorboard_dir))
    return CheckpointedGRPOTrainer(
        model,
        args=args,
        train_dataset=train_dataset,
        processing_class=processor,
        episode_source=source,
        method=grpo.method,
        reward_scorer=reward_scorer,
        coefficients=reward_coefficients(grpo.method, grpo.coefficients, tools),
        max_tool_calls=grpo.max_tool_calls,
        callbacks=extra,
        peft_config=lora_config(rank=grpo.lora_rank, alpha=grpo.lora_alpha) if grpo.use_lora else None,
        rollout_seed=seed,
        recorder=RolloutRecorder(rollouts_dir) if rollouts_dir is not None else None,
    )

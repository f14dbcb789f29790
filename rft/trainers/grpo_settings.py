"""Which `trl.GRPOConfig` settings `EpisodeGRPOTrainer` honours: an allow-list.

Every field whose value differs from TRL's default must be in `SUPPORTED_SETTINGS`, grouped by why the
trainer honours it; anything else is refused with `UnsupportedSetting`, because the rollout server samples,
not TRL, and a setting of TRL's own generation (or one never tried with episodes) would be silently ignored
or train on something else than what was sampled. Fields that TRL's or transformers' `__post_init__` fills in
(bf16, report_to, generation_batch_size...) are in the groups too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from trl import GRPOConfig

from rft.errors import RftError


class UnsupportedSetting(RftError):
    """A GRPOConfig setting this trainer cannot honour (the rollout server samples, not TRL)."""


# transformers' Trainer settings, applied by Trainer and accelerate as is: optimisation, precision,
# distribution, logging and saving, none of which the trainer's override touches.
TRAINER_SETTINGS = frozenset(
    {
        "output_dir",
        "seed",
        "data_seed",
        "full_determinism",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_steps",
        "num_train_epochs",
        "learning_rate",
        "lr_scheduler_type",
        "lr_scheduler_kwargs",
        "warmup_steps",
        "optim",
        "weight_decay",
        "adam_beta1",
        "adam_beta2",
        "adam_epsilon",
        "max_grad_norm",
        "bf16",
        "fp16",
        "tf32",
        "use_cpu",
        "gradient_checkpointing",
        "gradient_checkpointing_kwargs",  # also given to the override's no-grad forwards
        "deepspeed",
        "accelerator_config",
        "ddp_timeout",
        "ddp_backend",
        "ddp_find_unused_parameters",
        "dataloader_num_workers",
        "dataloader_pin_memory",
        "dataloader_persistent_workers",
        "dataloader_prefetch_factor",
        "torch_empty_cache_steps",
        "logging_strategy",
        "logging_steps",
        "logging_first_step",
        "logging_nan_inf_filter",
        "log_level",
        "log_level_replica",
        "log_on_each_node",
        "report_to",
        "run_name",
        "disable_tqdm",
        "skip_memory_metrics",
        "debug",
        "save_strategy",
        "save_steps",
        "save_total_limit",
    }
)

# TRL's GRPO settings read by the parts of TRL the trainer keeps (generation batch buffering, `_compute_loss`,
# the reference model, the completions log), passed to TRL as is.
TRL_SETTINGS = frozenset(
    {
        "num_generations",  # also the group size the override asks the rollout server for
        "generation_batch_size",
        "steps_per_generation",
        "num_iterations",
        "shuffle_dataset",
        "beta",
        "epsilon",
        "epsilon_high",
        "delta",
        "loss_type",
        "importance_sampling_level",
        "top_entropy_quantile",
        "off_policy_mask_threshold",  # reads the batch's sampling_per_token_logps
        "use_bias_correction_kl",
        "sapo_temperature_neg",
        "sapo_temperature_pos",
        "entropy_coef",
        "use_adaptive_entropy",
        "entropy_coef_min",
        "entropy_coef_max",
        "entropy_coef_delta",
        "entropy_target",
        "disable_dropout",
        "cast_lm_head_to_fp32",
        "sync_ref_model",
        "ref_model_mixup_alpha",
        "ref_model_sync_steps",
        "log_completions",
        "num_completions_to_print",
    }
)

# Settings of TRL's generation step that the override (`generate_and_score`) implements itself.
OVERRIDE_SETTINGS = frozenset(
    {
        "max_completion_length",  # the rollout server's per-turn token limit
        "temperature",  # sent to the rollout server (TRL's forward divides the logits by it too)
        "top_p",  # sent to the rollout server
        "mask_truncated_completions",
        "pad_to_multiple_of",
        "reward_weights",  # checked against the reward service's totals
        "scale_rewards",
        "multi_objective_aggregation",
        "vllm_importance_sampling_correction",  # the sampler is the rollout server's vLLM
        "vllm_importance_sampling_mode",
        "vllm_importance_sampling_clip_min",
        "vllm_importance_sampling_clip_max",
    }
)

SUPPORTED_SETTINGS = TRAINER_SETTINGS | TRL_SETTINGS | OVERRIDE_SETTINGS

SAMPLING_REFUSAL = (
    "top_k, min_p and repetition_penalty are not passed to the rollout server; leave them at their defaults"
)

# Refusals with a specific reason; any other unsupported setting gets the generic one (`refusal`).
REFUSALS = {
    "use_vllm": "use_vllm must be False: the rollouts come from episode_source",
    "remove_unused_columns": "remove_unused_columns must be False: the image and label columns are needed",
    "top_k": SAMPLING_REFUSAL,
    "min_p": SAMPLING_REFUSAL,
    "repetition_penalty": SAMPLING_REFUSAL,
    "use_transformers_continuous_batching": (
        "use_transformers_continuous_batching does not apply: the rollout server samples"
    ),
}


def check_arguments(args: GRPOConfig) -> None:
    """Refuse, in one line naming each, the settings changed from TRL's defaults that this trainer does not
    support."""
    changed = changed_settings(args)
    refused = [name for name in changed if name not in SUPPORTED_SETTINGS]
    if refused:
        reasons = dict.fromkeys(refusal(name, changed[name]) for name in refused)
        raise UnsupportedSetting("; ".join(reasons))


def changed_settings(args: GRPOConfig) -> dict[str, Any]:
    """{field: value} of every GRPOConfig field whose value is not TRL's default."""
    return {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(args)
        if field.init and getattr(args, field.name) != default_of(field)
    }


def default_of(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def refusal(name: str, value: Any) -> str:
    if name in REFUSALS:
        return REFUSALS[name]
    return (
        f"{name}={value!r} is not a setting EpisodeGRPOTrainer supports: leave it at TRL's default, or add it "
        "to rft/trainers/grpo_settings.py once the trainer honours it"
    )

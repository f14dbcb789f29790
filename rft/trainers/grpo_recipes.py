"""The papers' GRPO settings as TRL `GRPOConfig`s.

| | paper 001 (single-turn GRPO) | paper 003 DT-GRPO / ST-GRPO |
|---|---|---|
| group size | N = 6 | G = 8 |
| completions per optimizer step | 6 ("batch size 6") | 512 ("completion batchsize") |
| learning rate | 5e-6 | 1e-6, AdamW, weight decay 0.05 |
| KL coefficient | not given (our choice: 0.04, GRPO's own) | 0.0 |
| loss | 1/|o_i| per sequence, mean over the group (loss_type 'grpo') | Eq. 9, the same |
| length | L = 1200 in R_res | tool calls <= 3, at most 300 steps |

Where a paper is silent (clip epsilon, tokens per turn, sampling temperature) TRL's defaults are kept and the
choice is written down in docs/TRAINING.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trl import GRPOConfig

from rft.config import ConfigError
from rft.methods import MethodName


@dataclass(frozen=True)
class GrpoRecipe:
    method: MethodName
    num_generations: int
    completions_per_step: int  # completions behind one optimizer step
    learning_rate: float
    beta: float
    weight_decay: float
    max_completion_length: int  # tokens per model turn
    max_steps: int
    loss_type: str = "grpo"  # Eq. 9: 1/|o_i| sum_t, then the mean over the group


PAPER_RECIPES: dict[str, GrpoRecipe] = {
    "rft_fas": GrpoRecipe(
        method="rft_fas",
        num_generations=6,
        completions_per_step=6,
        learning_rate=5e-6,
        beta=0.04,
        weight_decay=0.0,
        max_completion_length=1200,  # L = 1200: R_res saturates there, so longer answers earn nothing more
        max_steps=-1,
    ),
    "dt_grpo": GrpoRecipe(
        method="dt_grpo",
        num_generations=8,
        completions_per_step=512,
        learning_rate=1e-6,
        beta=0.0,
        weight_decay=0.05,
        max_completion_length=1024,
        max_steps=300,
    ),
}
PAPER_RECIPES["st_grpo"] = dataclasses.replace(PAPER_RECIPES["dt_grpo"], method="st_grpo")


def accumulation_steps(
    *,
    generation_batch_size: int,
    per_device_train_batch_size: int,
    gradient_accumulation_steps: int | None,
    num_processes: int,
) -> int:
    """Micro-batches per optimizer step such that each step trains on exactly one generation batch (the
    on-policy update of Eq. 9, and one rollout record per step). `gradient_accumulation_steps` None derives
    it; a given value must agree. Raises ConfigError naming the keys to change."""
    global_batch = per_device_train_batch_size * num_processes
    if generation_batch_size % global_batch:
        raise ConfigError(
            f"grpo.generation_batch_size ({generation_batch_size}) must split into micro-batches of "
            f"grpo.per_device_train_batch_size ({per_device_train_batch_size}) on each of {num_processes} "
            f"process(es); make it a multiple of {global_batch} or lower per_device_train_batch_size"
        )
    derived = generation_batch_size // global_batch
    if gradient_accumulation_steps not in (None, derived):
        raise ConfigError(
            f"grpo.gradient_accumulation_steps ({gradient_accumulation_steps}) x per_device_train_batch_size "
            f"({per_device_train_batch_size}) x {num_processes} process(es) is not generation_batch_size "
            f"({generation_batch_size}): each optimizer step must train on one generation batch; set it to "
            f"{derived} or null"
        )
    return derived


def grpo_arguments(
    recipe: GrpoRecipe,
    *,
    output_dir: Path | str,
    per_device_train_batch_size: int,
    num_processes: int = 1,
    **overrides: Any,
) -> GRPOConfig:
    """TRL arguments for `recipe`: one optimizer step per `completions_per_step` completions, accumulated over
    micro-batches of `per_device_train_batch_size` on each of `num_processes` processes, all sampled at once
    (one generation batch per step, so the update is on-policy as in Eq. 9)."""
    accumulation = accumulation_steps(
        generation_batch_size=recipe.completions_per_step,
        per_device_train_batch_size=per_device_train_batch_size,
        gradient_accumulation_steps=None,
        num_processes=num_processes,
    )
    settings: dict[str, Any] = {
        "output_dir": str(output_dir),
        "num_generations": recipe.num_generations,
        "per_device_train_batch_size": per_device_train_batch_size,
        "gradient_accumulation_steps": accumulation,
        "steps_per_generation": accumulation,
        "learning_rate": recipe.learning_rate,
        "beta": recipe.beta,
        "weight_decay": recipe.weight_decay,
        "optim": "adamw_torch",
        "max_completion_length": recipe.max_completion_length,
        "max_steps": recipe.max_steps,
        "loss_type": recipe.loss_type,
        "scale_rewards": "group",  # A_i divides by the group's std (Eq. 9)
        "disable_dropout": True,  # pi_theta and pi_theta_old must be the same function of the weights
        "remove_unused_columns": False,
        "report_to": "none",
    }
    settings.update(overrides)
    return GRPOConfig(**settings)

"""The papers' GRPO settings (shipped as configs/recipes/*.yaml, checked against the papers by
tests/trainers/test_grpo.py) and the batch arithmetic that keeps each optimizer step on one generation batch.

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

from rft.config import ConfigError


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

"""The arithmetic of a GRPO step that TRL keeps inline in `_generate_and_score_completions`, as functions:
group-relative advantages, the sampler importance weights and the probability mass a top-p sampler keeps.

Paper 003, Eq. 9 (paper 001's Eq. 2 is the same with a clipped ratio and a KL term):

    L = -E [ 1/G sum_i 1/|o_i| sum_t  pi_theta(o_it | q, o_i<t) / pi_theta_old(o_it | q, o_i<t) * A_it ]
    A_it = (R_i - mean({R_1..R_G})) / std({R_1..R_G})

`group_advantages` is A_it, computed exactly as TRL 1.16 does it (the same `nanstd`, the same 1e-4 added to
the std, the same `scale_rewards` and `multi_objective_aggregation` options), so switching between this
trainer and TRL's own rollouts changes no number. The loss itself is TRL's `_compute_loss`, unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rft.trainers.trl_adapter import nanstd

STD_EPSILON = 1e-4  # TRL's


@dataclass(frozen=True)
class GroupAdvantages:
    advantages: torch.Tensor  # (N,) A_i, 0 for a completion no reward function could score
    rewards: torch.Tensor  # (N,) R_i = sum_k w_k r_ik (NaN where unscorable)
    std_is_zero: torch.Tensor  # (N,) bool: the group's rewards are all equal (no learning signal)


def group_advantages(
    rewards_per_func: torch.Tensor,
    weights: torch.Tensor,
    *,
    num_generations: int,
    scale_rewards: str = "group",
    aggregation: str = "sum_then_normalize",
) -> GroupAdvantages:
    """A_i of Eq. 9 for N = groups x G completions, laid out group after group.

    `rewards_per_func` is (N, K): one column per reward component; `weights` (K,) makes the paper's total
    (Eq. 6 of paper 001, Eq. 14 of paper 003). NaN marks a component that returned None."""
    if rewards_per_func.shape[0] % num_generations:
        raise ValueError(f"{rewards_per_func.shape[0]} completions do not make groups of {num_generations}")
    weights = weights.to(rewards_per_func.device, rewards_per_func.dtype)
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    if aggregation == "sum_then_normalize":
        rewards, advantages, std = _sum_then_normalize(
            rewards_per_func, weights, num_generations, scale_rewards
        )
    elif aggregation == "normalize_then_sum":
        rewards, advantages, std = _normalize_then_sum(rewards_per_func, weights, num_generations)
    else:
        raise ValueError(f"unknown multi_objective_aggregation {aggregation!r}")
    rewards = rewards.masked_fill(unscorable, math.nan)
    return GroupAdvantages(
        advantages=torch.nan_to_num(advantages.masked_fill(unscorable, math.nan), nan=0.0),
        rewards=rewards,
        std_is_zero=torch.isclose(std, torch.zeros_like(std)),
    )


def _sum_then_normalize(
    per_func: torch.Tensor, weights: torch.Tensor, num_generations: int, scale: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rewards = (per_func * weights[None]).nansum(dim=1)
    rewards = rewards.masked_fill(torch.isnan(per_func).all(dim=1), math.nan)
    grouped = rewards.view(-1, num_generations)
    mean = torch.nanmean(grouped, dim=1).repeat_interleave(num_generations)
    if scale in ("group", "none"):
        std = nanstd(grouped, dim=1).repeat_interleave(num_generations)
    elif scale == "batch":
        std = nanstd(rewards).expand_as(rewards)
    else:
        raise ValueError(f"unknown scale_rewards {scale!r}; expected 'group', 'batch' or 'none'")
    advantages = rewards - mean
    if scale != "none":
        advantages = advantages / (std + STD_EPSILON)
    return rewards, advantages, std


def _normalize_then_sum(
    per_func: torch.Tensor, weights: torch.Tensor, num_generations: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    grouped = per_func.view(-1, num_generations, per_func.shape[1])
    mean = torch.nanmean(grouped, dim=1, keepdim=True)
    std = nanstd(grouped, dim=1, keepdim=True)
    normalized = ((grouped - mean) / (std + STD_EPSILON)).view(-1, per_func.shape[1])
    rewards = (normalized * weights[None]).nansum(dim=1)
    batch_std = nanstd(rewards).expand_as(rewards)
    return rewards, (rewards - torch.nanmean(rewards)) / (batch_std + STD_EPSILON), batch_std


def sampler_importance_weights(
    trainer_logps: torch.Tensor,
    sampler_logps: torch.Tensor,
    mask: torch.Tensor,
    *,
    mode: str,
    clip_min: float | None,
    clip_max: float | None,
) -> torch.Tensor:
    """pi_theta_old / pi_sampler for tokens sampled by vLLM but trained on by the trainer's model: TRL's
    `vllm_importance_sampling_*` correction with the same four modes. (B, T) for token modes, (B, 1) for
    sequence modes; exactly 1 where `mask` is 0."""
    diff = torch.nan_to_num((trainer_logps - sampler_logps) * mask, nan=0.0)
    if mode.startswith("sequence"):
        diff = diff.sum(dim=-1, keepdim=True)
    ratio = torch.exp(diff)
    if mode.endswith("truncate"):
        return torch.clamp(ratio, min=clip_min, max=clip_max)
    if mode.endswith("mask"):
        low = -math.inf if clip_min is None else clip_min
        high = math.inf if clip_max is None else clip_max
        return ratio.masked_fill((ratio < low) | (ratio > high), 0.0)
    raise ValueError(f"unknown importance sampling mode {mode!r}")


def nucleus_log_mass(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """log S_t, the probability mass vLLM's top-p filter keeps at each position of `logits` (..., V), already
    divided by the temperature. vLLM's rule: sort ascending and drop the tokens whose cumulative probability
    stays at or below 1 - top_p, never the most likely one. vLLM's `processed_logprobs` of a sampled token is
    log p - log S_t, so comparing it with the trainer's full-vocabulary log p needs this term: without it every
    token's ratio is S_t < 1, and the sequence-level weight shrinks with the episode's length."""
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    probs = torch.softmax(logits.float(), dim=-1).sort(dim=-1).values
    dropped = probs.cumsum(dim=-1) <= 1 - top_p
    dropped[..., -1] = False
    return probs.masked_fill(dropped, 0.0).sum(dim=-1).log()


def token_advantages(advantages: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A_i x w_it as a (B, T) advantage. TRL's clipped loss is -min(r A, clip(r) A); for w >= 0,
    w x min(r A, clip(r) A) = min(r (wA), clip(r) (wA)), so folding the weight into the advantage is the
    same loss as TRL's own correction, which it applies only to its own vLLM rollouts."""
    return advantages[:, None] * weights.expand_as(mask).to(advantages.dtype)


def sampler_kl(trainer_logps: torch.Tensor, sampler_logps: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(pi_sampler || pi_theta) on tokens drawn from the sampler:
    r - 1 - log r with r = pi_theta / pi_sampler (>= 0, unbiased; Schulman's k3)."""
    log_ratio = torch.nan_to_num(trainer_logps - sampler_logps, nan=0.0) * mask
    return (torch.exp(log_ratio) - 1 - log_ratio) * mask

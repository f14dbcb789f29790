"""Scoring episodes for GRPO: the paper's reward of each method, from the reward service or from the TRL
reward adapters, as TRL's (N, K) `rewards_per_func` matrix.

Both sources compute the same pure functions (rft.rewards); the service (`reward_service.client.connect`:
in-process or over HTTP to the Ray deployment) also returns the sub-components (R_fast^fmt, F_tool, ...),
which are logged. The K columns are the components whose weighted sum is the paper's total:

    rft_fas  R_all = 1 R_format + 1 R_cls + 1 R_res                         (paper 001, Eq. 6)
    dt_grpo  R     = beta_fast R_fast + beta_rsn R_rsn + beta_tool R_tool   (paper 003, Eq. 14)
    st_grpo  R     = R_rsn^fmt + R_rsn^acc + 1_tool 1[R_rsn^acc > 0]        (paper 003, Eq. S15)

The method's `reward_columns` (rft.methods) name them. Column k is named after TRL adapter k (`rft.rewards.trl`), so TRL logs it as `rewards/<adapter>/mean`
whichever source computed it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rft.methods import Coefficients, Method
from rft.parsing.labels import Label
from rft.rollout.episode import Episode
from rft.rollout.protocols import RewardScorer

# How far the service's total may stray from sum_k w_k column_k (float32 rounding only).
TOTAL_TOLERANCE = 1e-4


class RewardMismatchError(RuntimeError):
    """The service's total is not the weighted sum of its components: trainer and service disagree on the
    coefficients."""


def service_coefficients(coefficients: Coefficients) -> dict[str, Any]:
    """The `coefficients` field of a score request: every coefficient spelt out, so the service can never
    fall back to defaults that differ from the trainer's weights (ST-GRPO has none, Eq. S15)."""
    return {} if coefficients is None else dataclasses.asdict(coefficients)


@dataclass(frozen=True)
class ScoredEpisodes:
    columns: torch.Tensor  # (N, K) the weighted components, in adapter order
    components: dict[str, list[float]]  # every component the service returned, per episode
    format_errors: list[list[str]]


def score_with_service(
    client: RewardScorer,
    method: Method,
    episodes: Sequence[Episode],
    labels: Sequence[Label],
    *,
    coefficients: Coefficients,
    max_tool_calls: int,
    weights: Sequence[float],
) -> ScoredEpisodes:
    """Score `episodes` with the reward service client (`score(method, rollouts, coefficients,
    max_tool_calls)`) and check that its totals are the weighted sums of the columns."""
    rollouts = [
        {
            "id": str(index),
            "label": label,
            "turns": list(episode.turns) or [""],
            "completion_tokens": episode.completion_tokens,
        }
        for index, (episode, label) in enumerate(zip(episodes, labels, strict=True))
    ]
    scores = client.score(
        method.name,
        rollouts,
        coefficients=service_coefficients(coefficients),
        max_tool_calls=max_tool_calls,
    )
    names = method.reward_columns
    columns = torch.tensor([[s.components[n] for n in names] for s in scores], dtype=torch.float32)
    totals = torch.tensor([s.total for s in scores], dtype=torch.float32)
    check_totals(columns, totals, torch.tensor(list(weights), dtype=torch.float32))
    components = {name: [s.components[name] for s in scores] for name in scores[0].components}
    return ScoredEpisodes(columns, components, [list(s.format_errors) for s in scores])


def check_totals(columns: torch.Tensor, totals: torch.Tensor, weights: torch.Tensor) -> None:
    weighted = (columns * weights[None]).sum(dim=1)
    worst = (weighted - totals).abs().max().item() if len(totals) else 0.0
    if worst > TOTAL_TOLERANCE:
        raise RewardMismatchError(
            f"the reward service's totals differ from sum_k reward_weights[k] * component_k by up to {worst:.4g}: "
            "GRPOConfig.reward_weights and the coefficients sent to the service disagree"
        )

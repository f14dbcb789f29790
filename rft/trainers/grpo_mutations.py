"""Test mutations: deliberate breakages of GRPO that the learning test (tests/trainers/test_learning.py) must
catch. Never set them in a real run.

`RFT_MUTATION` (an environment variable, read here and only here) names one:

- `flip_advantage`: every advantage's sign is flipped, so the policy is pushed away from what was rewarded;
- `mask_tool_turns`: the loss mask is zeroed on every model turn that calls a tool, so the policy never gets
  a gradient on its decision to call one.

Unset or empty: no mutation. Any other value is refused, so a typo cannot silently run the real thing.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

import torch

from rft.rollout.episode import Episode

MUTATION_ENV = "RFT_MUTATION"
MUTATIONS = ("flip_advantage", "mask_tool_turns")
Mutation = Literal["flip_advantage", "mask_tool_turns"]
TOOL_CALL_TAG = "<tool_call>"


def active_mutation() -> Mutation | None:
    """The mutation named by RFT_MUTATION, or None."""
    value = os.environ.get(MUTATION_ENV, "").strip()
    if not value:
        return None
    if value not in MUTATIONS:
        raise ValueError(
            f"{MUTATION_ENV}={value!r} is not a test mutation; use one of {', '.join(MUTATIONS)} or unset it"
        )
    return value  # type: ignore[return-value]


def mutate_advantages(advantages: torch.Tensor, mutation: Mutation | None) -> torch.Tensor:
    return -advantages if mutation == "flip_advantage" else advantages


def mutate_episode(episode: Episode, mutation: Mutation | None) -> Episode:
    """The episode with its tool-calling turns out of the loss mask under `mask_tool_turns`."""
    if mutation != "mask_tool_turns":
        return episode
    return dataclasses.replace(episode, mask=without_tool_turns(episode.mask, episode.turns))


def without_tool_turns(mask: list[int], turns: list[str]) -> list[int]:
    """`mask` with the runs of 1 (one per model turn, in order) zeroed where that turn's text calls a tool."""
    out = list(mask)
    turn = -1
    for index, value in enumerate(mask):
        if value and (index == 0 or not mask[index - 1]):
            turn += 1
        if value and turn < len(turns) and TOOL_CALL_TAG in turns[turn]:
            out[index] = 0
    return out

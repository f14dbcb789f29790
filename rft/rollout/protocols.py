"""The interfaces between the trainer (and evaluation) and whatever produces rollouts and rewards.

`rollout_server.client.RolloutClient` (HTTP) and `rollout_server.inprocess.InProcessRollouts` (vLLM in the
trainer's process) are `EpisodeSource`s; `reward_service.client.RewardClient` (HTTP) and `InProcessRewards`
are `RewardScorer`s and `ToolRunner`s. A job (rft.jobs) picks the implementations; a trainer cannot tell
them apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from rft.rollout.episode import Episode
from rft.rollout.sampling import SampleResponse, Sampling


class EpisodeSource(Protocol):
    """Samples G rollouts per image from the current policy weights. Only the main process calls it."""

    def episodes(
        self, images: Sequence[Image.Image], *, n: int, sampling: Sampling | None = None
    ) -> tuple[list[list[Episode]], int]: ...

    def samples(
        self, messages: list[dict], images: Sequence[Image.Image], *, n: int, sampling: Sampling | None = None
    ) -> SampleResponse: ...

    def update_weights(self, state_dict: Mapping[str, torch.Tensor]) -> int: ...


class ScoredRollout(Protocol):
    id: Any
    total: float
    components: dict[str, float]
    format_errors: list[str]


class RewardScorer(Protocol):
    """Scores rollouts with a method's pure reward functions (rft.rewards) and returns every component."""

    def score(
        self,
        method: str,
        rollouts: Iterable[Mapping[str, Any]],
        coefficients: Mapping[str, Any] | None = None,
        max_tool_calls: int = 3,
        request_id: str | None = None,
    ) -> Sequence[ScoredRollout]: ...


class ToolResult(Protocol):
    ok: bool
    image: np.ndarray | None
    error: str | None


class ToolRunner(Protocol):
    """Executes one visual tool call (rft.tools) on an image, validating its arguments."""

    def run_tool(
        self, name: str, image: Image.Image | np.ndarray, arguments: Any, output_size: int = 224
    ) -> ToolResult: ...

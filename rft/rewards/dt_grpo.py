"""Paper 003's tool-diversity reward of DT-GRPO (section 3.2.3, Eq. 10-14) and the ST-GRPO ablation (Eq. S15).

    R_fast = R_fast^fmt + 1[R_fast^fmt > -1] * 1[CLS_fast = label]                 (Eq. 10)
    R_rsn  = R_rsn^fmt  + 1[R_rsn^fmt  > -1] * 1[CLS_final = label]                (Eq. 11)
    F_tool = sum_k gamma_k * min(sum_{l=2..L} v(l) * 1[T(l) = T_k], 1)             (Eq. 12, corrected)
    R_tool = F_tool * 1[CLS_final = label]                                         (Eq. 13)
    R      = beta_fast * R_fast + beta_rsn * R_rsn + beta_tool * R_tool            (Eq. 14)

R_fast^fmt and R_rsn^fmt are -1 for a wrong format and 0 otherwise; for the reasoning turns "wrong" also
covers an invalid tool call anywhere in the episode (Eq. 11, Appendix B.2). Eq. 12 prints max[count, 1],
which would credit every tool whether called or not; the intent, rewarding each distinct tool used at least
once, is min(count, 1). Only valid calls count (v(l) = 1). Defaults are section 4.1's: beta 0.1 / 0.5 / 0.4,
gamma_k = 0.2 for every tool. An episode with no final answer has CLS_final undefined, never equal to the
label. The episode's structure rules (answer not last, calls past the limit) are rft.parsing.tar_fas's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rft.parsing.labels import Label, as_label
from rft.parsing.tar_fas import FastAnswer, ParsedEpisode
from rft.tools import TOOL_NAMES

DEFAULT_TOOL_WEIGHT = 0.2
# Appendix C.2.3: "only ZoomIn tool are allowed in ST-GRPO".
ST_GRPO_TOOL = "ZoomInTool"


def _default_tool_weights() -> dict[str, float]:
    return dict.fromkeys(TOOL_NAMES, DEFAULT_TOOL_WEIGHT)


@dataclass(frozen=True)
class DtGrpoCoefficients:
    """beta_fast, beta_rsn, beta_tool of Eq. 14 and gamma_k of Eq. 12, one weight for each of the six tools."""

    beta_fast: float = 0.1
    beta_rsn: float = 0.5
    beta_tool: float = 0.4
    tool_weights: Mapping[str, float] = field(default_factory=_default_tool_weights)

    def __post_init__(self) -> None:
        # A misspelt or missing tool would silently earn nothing: every tool must be named, once.
        if set(self.tool_weights) != set(TOOL_NAMES):
            unknown = sorted(set(self.tool_weights) - set(TOOL_NAMES))
            missing = sorted(set(TOOL_NAMES) - set(self.tool_weights))
            raise ValueError(f"tool_weights must name each tool once; unknown {unknown}, missing {missing}")
        # A private copy (a plain dict, so that the coefficients and the reward functions bound to them pickle
        # for Ray workers): changing the caller's mapping later cannot change the reward.
        object.__setattr__(self, "tool_weights", dict(self.tool_weights))


PAPER_COEFFICIENTS = DtGrpoCoefficients()


@dataclass(frozen=True, slots=True)
class DtGrpoReward:
    """Every term of Eq. 10-14 for one episode, and the weighted total R."""

    fast_format: float
    fast: float
    reasoning_format: float
    reasoning: float
    tool_diversity: float
    tool: float
    total: float


@dataclass(frozen=True, slots=True)
class StGrpoReward:
    """The three terms of Eq. S15 for one episode, and their sum."""

    reasoning_format: float
    accuracy: float
    tool_bonus: float
    total: float


def _matches(predicted: Label | None, label: Label) -> bool:
    return predicted is not None and predicted == label


def _gated(format_reward: float, correct: bool) -> float:
    """R^fmt + 1[R^fmt > -1] * 1[correct], the shape shared by Eq. 10 and Eq. 11."""
    return format_reward + (1.0 if format_reward > -1 and correct else 0.0)


def fast_format_reward(fast: FastAnswer) -> float:
    """R_fast^fmt: -1 if the fast answer's format is wrong, else 0 (Eq. 10, Appendix B.2)."""
    return 0.0 if fast.format_ok else -1.0


def fast_reward(fast: FastAnswer, label: Label) -> float:
    """R_fast, Eq. 10: -1 for a wrong format, else 1 when CLS_fast equals the label and 0 when not."""
    return _gated(fast_format_reward(fast), _matches(fast.predicted, label))


def reasoning_format_reward(episode: ParsedEpisode) -> float:
    """R_rsn^fmt: -1 if any reasoning turn breaks the format or any tool call is invalid, else 0 (Eq. 11).

    Both cases are in `episode.errors` (rft.parsing.tar_fas), so the episode's format flag covers them.
    """
    return 0.0 if episode.reasoning_format_ok else -1.0


def reasoning_reward(episode: ParsedEpisode, label: Label) -> float:
    """R_rsn, Eq. 11: -1 for a wrong reasoning format, else 1 when CLS_final equals the label and 0 when not."""
    return _gated(reasoning_format_reward(episode), _matches(episode.final_answer, label))


def tool_diversity_score(episode: ParsedEpisode, tool_weights: Mapping[str, float]) -> float:
    """F_tool, Eq. 12 with min(count, 1): the weights gamma_k of the distinct tools called validly."""
    used = {call.name for call in episode.tool_calls if call.valid}
    return sum(weight for name, weight in tool_weights.items() if name in used)


def tool_reward(episode: ParsedEpisode, label: Label, tool_weights: Mapping[str, float]) -> float:
    """R_tool, Eq. 13: F_tool when the final answer is correct, else 0."""
    correct = _matches(episode.final_answer, label)
    return tool_diversity_score(episode, tool_weights) if correct else 0.0


def dt_grpo_reward(
    episode: ParsedEpisode, label: Label, coefficients: DtGrpoCoefficients = PAPER_COEFFICIENTS
) -> DtGrpoReward:
    """R, Eq. 14, with every term of Eq. 10-13. `label` is 'live' / 'spoof' (or the dataset's 0 / 1)."""
    label = as_label(label)
    fast = fast_reward(episode.fast, label)
    reasoning = reasoning_reward(episode, label)
    diversity = tool_diversity_score(episode, coefficients.tool_weights)
    tool = tool_reward(episode, label, coefficients.tool_weights)
    total = coefficients.beta_fast * fast + coefficients.beta_rsn * reasoning + coefficients.beta_tool * tool
    return DtGrpoReward(
        fast_format=fast_format_reward(episode.fast),
        fast=fast,
        reasoning_format=reasoning_format_reward(episode),
        reasoning=reasoning,
        tool_diversity=diversity,
        tool=tool,
        total=total,
    )


def st_grpo_format_reward(episode: ParsedEpisode) -> float:
    """R_rsn^fmt of Eq. S15: as in DT-GRPO, and a call to any tool but ZoomInTool is an invalid call."""
    only_zoom_in = all(call.name == ST_GRPO_TOOL for call in episode.tool_calls)
    return reasoning_format_reward(episode) if only_zoom_in else -1.0


def st_grpo_accuracy_reward(episode: ParsedEpisode, label: Label) -> float:
    """R_rsn^acc of Eq. S15: 1[CLS_final = label], not gated by the format (Eq. S15 adds the terms)."""
    return 1.0 if _matches(episode.final_answer, label) else 0.0


def st_grpo_tool_bonus(episode: ParsedEpisode, label: Label) -> float:
    """1_tool * 1[R_rsn^acc > 0] of Eq. S15: 1 when a valid ZoomInTool call led to a correct answer."""
    zoomed_in = any(call.valid and call.name == ST_GRPO_TOOL for call in episode.tool_calls)
    return 1.0 if zoomed_in and st_grpo_accuracy_reward(episode, label) > 0 else 0.0


def st_grpo_reward(episode: ParsedEpisode, label: Label) -> StGrpoReward:
    """R_ST-GRPO, Eq. S15 (Appendix C.2.3): R_rsn^fmt + R_rsn^acc + 1_tool * 1[R_rsn^acc > 0].

    The fast answer plays no part: Eq. S15 has no fast term.
    """
    label = as_label(label)
    reasoning_format = st_grpo_format_reward(episode)
    accuracy = st_grpo_accuracy_reward(episode, label)
    bonus = st_grpo_tool_bonus(episode, label)
    return StGrpoReward(reasoning_format, accuracy, bonus, reasoning_format + accuracy + bonus)

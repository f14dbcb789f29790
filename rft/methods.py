"""The methods the project trains and evaluates, in one table: what each samples, how it is rewarded and
how its answer is read. The trainer, the reward service, evaluation and the jobs read this table instead
of dispatching on method names.

| method | paper | rollout | fast answer | tools | reward (columns)                               | coefficients |
|---|---|---|---|---|---|---|
| rft_fas | 001 | single turn  | no  | no  | R_format + R_cls + R_res (Eq. 3-6)              | RftFasCoefficients |
| dt_grpo | 003 | tool episode | yes | yes | beta R_fast + beta R_rsn + beta R_tool (Eq. 14) | DtGrpoCoefficients |
| st_grpo | 003 | tool episode | yes | ZoomIn | R_rsn^fmt + R_rsn^acc + bonus (Eq. S15)      | none |

A baseline (InstructFLIP, the caption VLM) is a method whose `rollout` is "none": it has no rewards and is
scored by its own head; its row will carry `reward=None`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rft.parsing.labels import Label
from rft.parsing.tar_fas import parse_episode
from rft.prompts.episodes import Message
from rft.prompts.rft_fas import rft_fas_messages
from rft.rewards.dt_grpo import DtGrpoCoefficients, dt_grpo_reward, st_grpo_reward
from rft.rewards.rft_fas import RftFasCoefficients, rft_fas_reward
from rft.rewards.trl import RewardFunc, dt_grpo_trl_rewards, rft_fas_trl_rewards, st_grpo_trl_rewards

MethodName = Literal["rft_fas", "dt_grpo", "st_grpo"]
Coefficients = RftFasCoefficients | DtGrpoCoefficients | None
Rollout = Literal["single_turn", "tool_episode", "none"]


@dataclass(frozen=True)
class Scored:
    """One rollout's reward: the total, every component by name, and why its format was wrong (if it was)."""

    total: float
    components: dict[str, float]
    format_errors: list[str]


# (turns, label, completion_tokens, coefficients, max_tool_calls) -> Scored
ScoreFunc = Callable[[Sequence[str], Label, int, Any, int], Scored]
# (coefficients, max_tool_calls) -> TRL reward functions and the reward_weights that make the total
TrlRewards = Callable[[Any, int], tuple[list[RewardFunc], list[float]]]


@dataclass(frozen=True)
class Method:
    name: str
    paper: str
    rollout: Rollout
    fast_answer: bool  # the first turn is a fast answer, evaluated on its own (paper 003)
    uses_tools: bool
    coefficient_type: type | None  # None: the method has no coefficients (Eq. S15)
    reward_columns: tuple[str, ...]  # the reward components behind the TRL adapters, in adapter order
    final_classes: tuple[str, str]  # the final answer's (live, spoof) continuations, for P(spoof)
    counts_tokens: bool  # the reward reads the response's token count (R_res, Eq. 5)
    score: ScoreFunc
    trl_rewards: TrlRewards
    prompt: Callable[[], list[Message]] | None = None  # the single-turn prompt (rollout "single_turn")

    def default_coefficients(self) -> Coefficients:
        return self.coefficient_type() if self.coefficient_type is not None else None

    def coefficient_names(self) -> tuple[str, ...]:
        if self.coefficient_type is None:
            return ()
        return tuple(f.name for f in dataclasses.fields(self.coefficient_type))

    def coefficients(
        self, overrides: Mapping[str, Any] | None = None, tools: Sequence[str] | None = None
    ) -> Coefficients:
        """The paper's coefficients with `overrides` in their place; a partial `tool_weights` keeps the
        paper's gamma_k for the tools it does not name. `tools`, the run's tool set (run.tools), zeroes
        gamma_k of every tool outside it: a call to a tool the run may not use earns nothing (Table 2's
        arms). Raises ValueError naming a key that does not apply."""
        overrides = dict(overrides or {})
        names = self.coefficient_names()
        foreign = sorted(set(overrides) - set(names))
        if foreign:
            known = ", ".join(names) or "none (Eq. S15 has no coefficients)"
            raise ValueError(
                f"{foreign[0]} does not apply to method {self.name}; its coefficients are: {known}"
            )
        base = self.default_coefficients()
        if base is None:
            return None
        if "tool_weights" in overrides and isinstance(base, DtGrpoCoefficients):
            overrides["tool_weights"] = {**base.tool_weights, **overrides["tool_weights"]}
        if tools is not None and isinstance(base, DtGrpoCoefficients):
            weights = overrides.get("tool_weights", base.tool_weights)
            overrides["tool_weights"] = {name: (w if name in tools else 0.0) for name, w in weights.items()}
        return dataclasses.replace(base, **overrides)

    def reward_functions(
        self, coefficients: Coefficients, max_tool_calls: int
    ) -> tuple[list[RewardFunc], list[float]]:
        """The TRL reward functions and the `reward_weights` that make the paper's total."""
        chosen = coefficients if coefficients is not None else self.default_coefficients()
        return self.trl_rewards(chosen, max_tool_calls)


def _components(result: Any) -> dict[str, float]:
    return {name: float(value) for name, value in dataclasses.asdict(result).items() if name != "total"}


def _score_rft_fas(turns: Sequence[str], label: Label, tokens: int, coefficients: Any, _: int) -> Scored:
    result = rft_fas_reward("".join(turns), label, tokens, coefficients)
    # R_format is 1 exactly when the response matches the format (Eq. 3): no second parse needed.
    errors = [] if result.format == 1.0 else ["response does not match the format"]
    return Scored(float(result.total), _components(result), errors)


def _score_dt_grpo(
    turns: Sequence[str], label: Label, _: int, coefficients: Any, max_tool_calls: int
) -> Scored:
    episode = parse_episode(turns, max_tool_calls=max_tool_calls)
    result = dt_grpo_reward(episode, label, coefficients)
    return Scored(float(result.total), _components(result), list(episode.errors))


def _score_st_grpo(turns: Sequence[str], label: Label, _: int, __: Any, max_tool_calls: int) -> Scored:
    episode = parse_episode(turns, max_tool_calls=max_tool_calls)
    result = st_grpo_reward(episode, label)
    return Scored(float(result.total), _components(result), list(episode.errors))


# Each class is scored by its whole answer text, closing tag included, tokenised together with the text the
# model wrote before it: byte-level BPE merges a tag's ">" with the next "<" ("><", "></"), so a class text
# tokenised apart ("<Spoof>") ends in a token the model never writes there, whose improbability would
# dominate (and, in a trained model, invert) the comparison.
# Paper 003's final answer "<answer>(<Spoof>/<Real>)</answer>" (Appendix B.1); paper 001's
# "<answer>real|fake</answer>" (rft.parsing.rft_fas: real = live, fake = spoof).
TAR_FAS_FINAL_CLASSES = ("<Real></answer>", "<Spoof></answer>")
RFT_FAS_FINAL_CLASSES = ("real</answer>", "fake</answer>")

METHODS: dict[str, Method] = {
    "rft_fas": Method(
        name="rft_fas",
        paper="001",
        rollout="single_turn",
        fast_answer=False,
        uses_tools=False,
        coefficient_type=RftFasCoefficients,
        reward_columns=("format", "cls", "res"),
        final_classes=RFT_FAS_FINAL_CLASSES,
        counts_tokens=True,
        score=_score_rft_fas,
        trl_rewards=lambda coefficients, _: rft_fas_trl_rewards(coefficients),
        prompt=rft_fas_messages,
    ),
    "dt_grpo": Method(
        name="dt_grpo",
        paper="003",
        rollout="tool_episode",
        fast_answer=True,
        uses_tools=True,
        coefficient_type=DtGrpoCoefficients,
        reward_columns=("fast", "reasoning", "tool"),
        final_classes=TAR_FAS_FINAL_CLASSES,
        counts_tokens=False,
        score=_score_dt_grpo,
        trl_rewards=dt_grpo_trl_rewards,
    ),
    "st_grpo": Method(
        name="st_grpo",
        paper="003",
        rollout="tool_episode",
        fast_answer=True,
        uses_tools=True,
        coefficient_type=None,
        reward_columns=("reasoning_format", "accuracy", "tool_bonus"),
        final_classes=TAR_FAS_FINAL_CLASSES,
        counts_tokens=False,
        score=_score_st_grpo,
        trl_rewards=lambda _, max_tool_calls: st_grpo_trl_rewards(max_tool_calls),
    ),
}


def method_named(name: str) -> Method:
    """The table's row for `name`; a ValueError naming the known methods otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None

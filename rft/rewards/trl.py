"""The rewards in the form TRL 1.16's GRPOTrainer calls them: one function per component.

`GRPOTrainer._calculate_rewards` calls every reward function as

    f(prompts=prompts, completions=completions, completion_ids=completion_ids, **reward_kwargs)

and expects one float (or None) per completion. `reward_kwargs` holds, as lists with one entry per
completion, every dataset column except prompt / completion / completion_ids and every extra field a
`rollout_func` returned; plus `trainer_state`, `log_extra` and `log_metric`. Each function's batch mean is
logged as `rewards/<__name__>/mean` (a functools.partial is logged under the wrapped function's name), and the
scalar reward is `sum_i GRPOConfig.reward_weights[i] * r_i`. So each paper's total is recovered by passing its
component functions with the weights the `*_trl_rewards` helpers return:

    funcs, weights = dt_grpo_trl_rewards()
    GRPOTrainer(reward_funcs=funcs, args=GRPOConfig(reward_weights=weights, ...), ...)

Fields the adapters read (docs/REWARDS.md):
- `label` (dataset column): 'live' / 'spoof', or rft.data.schema's ClassLabel index 0 (live) / 1 (spoof).
- `completions` (paper 001): plain strings, or conversational `[{"role": "assistant", "content": text}]`.
- `completion_ids` (paper 001): the completion's token ids; their count is len(o_i) of Eq. 5.
- `episode_turns` (paper 003, from the rollout function): per completion, the model's text of each turn,
  turn 1 the fast answer, decoded without special tokens.
The adapters' own keyword parameters (`max_length`, `max_tool_calls`, `tool_weights`) are bound with
functools.partial by the helpers; no dataset column or rollout field may use those names.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rft.parsing.labels import as_label
from rft.parsing.rft_fas import parse_think_answer
from rft.parsing.tar_fas import DEFAULT_MAX_TOOL_CALLS, ParsedEpisode, parse_episode
from rft.rewards import dt_grpo, rft_fas
from rft.rewards.dt_grpo import DtGrpoCoefficients
from rft.rewards.rft_fas import DEFAULT_MAX_LENGTH, RftFasCoefficients

RewardFunc = Callable[..., list[float]]
LogExtra = Callable[[str, list], None]


def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or the text of a conversational completion's messages."""
    if isinstance(completion, str):
        return completion
    return "".join(_message_text(message) for message in completion or [])


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    # Multimodal content is a list of parts; only text parts carry the answer.
    return "".join(part.get("text") or "" for part in content or [] if part.get("type") == "text")


# Paper 001 (Eq. 3-6): weights 1 / 1 / 1 give R_all.


def r_format(completions: list, log_extra: LogExtra | None = None, **_: Any) -> list[float]:
    """R_format (paper 001, Eq. 3) of each completion; logs why a format failed as `format_error`."""
    parsed = [parse_think_answer(completion_text(completion)) for completion in completions]
    if log_extra is not None:
        log_extra("format_error", [result.error or "" for result in parsed])
    return [rft_fas.format_reward(result) for result in parsed]


def r_cls(completions: list, label: list, **_: Any) -> list[float]:
    """R_cls (paper 001, Eq. 4) of each completion against the dataset's `label` column."""
    return [
        rft_fas.class_reward(parse_think_answer(completion_text(completion)).predicted, as_label(truth))
        for completion, truth in zip(completions, label, strict=True)
    ]


def r_res(
    completions: list,
    completion_ids: list[Sequence[int]],
    label: list,
    max_length: int = DEFAULT_MAX_LENGTH,
    **_: Any,
) -> list[float]:
    """R_res (paper 001, Eq. 5): +-min(1, len/L) with len the completion's token count, L = `max_length`."""
    rewards = []
    for completion, ids, truth in zip(completions, completion_ids, label, strict=True):
        predicted = parse_think_answer(completion_text(completion)).predicted
        correct = rft_fas.is_correct(predicted, as_label(truth))
        rewards.append(rft_fas.reasoning_consistency_reward(correct, len(ids), max_length))
    return rewards


def rft_fas_trl_rewards(
    coefficients: RftFasCoefficients = rft_fas.PAPER_COEFFICIENTS,
) -> tuple[list[RewardFunc], list[float]]:
    """Paper 001's reward functions and the `GRPOConfig.reward_weights` that make their sum R_all (Eq. 6)."""
    funcs = [r_format, r_cls, functools.partial(r_res, max_length=coefficients.max_length)]
    return funcs, [coefficients.format_weight, coefficients.cls_weight, coefficients.res_weight]


# Paper 003, DT-GRPO (Eq. 10-14): weights beta_fast / beta_rsn / beta_tool give R.


def _episodes(episode_turns: list[Sequence[str]], max_tool_calls: int) -> list[ParsedEpisode]:
    return [parse_episode(turns, max_tool_calls) for turns in episode_turns]


def r_fast(
    episode_turns: list[Sequence[str]],
    label: list,
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
    **_: Any,
) -> list[float]:
    """R_fast (paper 003, Eq. 10) of each episode."""
    return [
        dt_grpo.fast_reward(episode.fast, as_label(truth))
        for episode, truth in zip(_episodes(episode_turns, max_tool_calls), label, strict=True)
    ]


def r_rsn(
    episode_turns: list[Sequence[str]],
    label: list,
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
    log_extra: LogExtra | None = None,
    **_: Any,
) -> list[float]:
    """R_rsn (paper 003, Eq. 11) of each episode; logs why the reasoning format failed as `reasoning_errors`."""
    episodes = _episodes(episode_turns, max_tool_calls)
    if log_extra is not None:
        log_extra("reasoning_errors", ["; ".join(episode.errors) for episode in episodes])
    return [
        dt_grpo.reasoning_reward(episode, as_label(truth))
        for episode, truth in zip(episodes, label, strict=True)
    ]


def r_tool(
    episode_turns: list[Sequence[str]],
    label: list,
    tool_weights: Mapping[str, float] | None = None,
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
    **_: Any,
) -> list[float]:
    """R_tool (paper 003, Eq. 13) of each episode; `tool_weights` are gamma_k (0.2 each by default)."""
    weights = tool_weights if tool_weights is not None else dt_grpo.PAPER_COEFFICIENTS.tool_weights
    return [
        dt_grpo.tool_reward(episode, as_label(truth), weights)
        for episode, truth in zip(_episodes(episode_turns, max_tool_calls), label, strict=True)
    ]


def dt_grpo_trl_rewards(
    coefficients: DtGrpoCoefficients = dt_grpo.PAPER_COEFFICIENTS,
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
) -> tuple[list[RewardFunc], list[float]]:
    """DT-GRPO's reward functions and the `GRPOConfig.reward_weights` that make their sum R (Eq. 14)."""
    limit = {"max_tool_calls": max_tool_calls}
    funcs = [
        functools.partial(r_fast, **limit),
        functools.partial(r_rsn, **limit),
        functools.partial(r_tool, tool_weights=coefficients.tool_weights, **limit),
    ]
    return funcs, [coefficients.beta_fast, coefficients.beta_rsn, coefficients.beta_tool]


# Paper 003's ST-GRPO ablation (Eq. S15): three unit-weight terms.


def r_st_format(
    episode_turns: list[Sequence[str]], max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS, **_: Any
) -> list[float]:
    """R_rsn^fmt of Eq. S15: -1 for a wrong reasoning format or any call that is not a valid ZoomInTool call."""
    return [dt_grpo.st_grpo_format_reward(episode) for episode in _episodes(episode_turns, max_tool_calls)]


def r_st_accuracy(
    episode_turns: list[Sequence[str]], label: list, max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS, **_: Any
) -> list[float]:
    """R_rsn^acc of Eq. S15: 1 when the final answer equals the label."""
    return [
        dt_grpo.st_grpo_accuracy_reward(episode, as_label(truth))
        for episode, truth in zip(_episodes(episode_turns, max_tool_calls), label, strict=True)
    ]


def r_st_tool(
    episode_turns: list[Sequence[str]], label: list, max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS, **_: Any
) -> list[float]:
    """1_tool * 1[R_rsn^acc > 0] of Eq. S15: 1 when a valid ZoomInTool call preceded a correct answer."""
    return [
        dt_grpo.st_grpo_tool_bonus(episode, as_label(truth))
        for episode, truth in zip(_episodes(episode_turns, max_tool_calls), label, strict=True)
    ]


def st_grpo_trl_rewards(
    max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS,
) -> tuple[list[RewardFunc], list[float]]:
    """ST-GRPO's reward functions and the unit weights that make their sum R_ST-GRPO (Eq. S15)."""
    funcs = [
        functools.partial(func, max_tool_calls=max_tool_calls)
        for func in (r_st_format, r_st_accuracy, r_st_tool)
    ]
    return funcs, [1.0, 1.0, 1.0]

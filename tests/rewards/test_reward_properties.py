"""Property tests of the rewards: bounds, gates and identities of Eq. 3-6, Eq. 10-14 and Eq. S15 on arbitrary episodes."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rft.parsing import parse_episode
from rft.rewards.dt_grpo import DtGrpoCoefficients, dt_grpo_reward, st_grpo_reward
from rft.rewards.rft_fas import RftFasCoefficients, rft_fas_reward
from rft.rewards.trl import dt_grpo_trl_rewards, rft_fas_trl_rewards, st_grpo_trl_rewards
from rft.tools import TOOL_NAMES

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_ARGUMENTS = {"ZoomInTool": {"bbox": [10, 10, 100, 100]}, "LBPTool": {"P": 16, "R": 2.0}}


def call(name, arguments):
    return f"<think>t</think><tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


valid_calls = st.sampled_from([call(name, VALID_ARGUMENTS.get(name, {})) for name in TOOL_NAMES])
invalid_calls = st.sampled_from(
    [
        call("ZoomInTool", {"bbox": [float("nan"), 0, 1, 1]}),
        call("ZoomInTool", {"bbox": [5, 5, 1, 1]}),
        call("LBPTool", {"P": 1000}),
        call("Zoom", {}),
        "<think>t</think><tool_call>{not json}</tool_call>",
    ]
)
answers = st.sampled_from(
    ["<think>t</think><answer><Real></answer>", "<think>t</think><answer><Spoof></answer>"]
)
junk = st.sampled_from(["<think>t</think>", "<answer><Real></answer>", "", "Spoof"]) | st.text(max_size=20)
reasoning_turns = st.one_of(valid_calls, valid_calls, invalid_calls, answers, junk)
fast_answers = st.sampled_from(["<Real><reason>r</reason>", "<Spoof><reason>s</reason>", "<Spoof>", "Real"])
episodes = st.builds(lambda fast, turns: [fast, *turns], fast_answers, st.lists(reasoning_turns, max_size=6))
labels = st.sampled_from(["live", "spoof"])

MAX_F_TOOL = 0.2 * len(TOOL_NAMES)


@PROPERTY_SETTINGS
@given(episodes, labels, st.integers(0, 6))
def test_dt_grpo_terms_are_bounded_and_gated(turns, label, max_tool_calls):
    episode = parse_episode(turns, max_tool_calls)
    reward = dt_grpo_reward(episode, label)
    assert reward.fast in (-1, 0, 1)
    assert reward.reasoning in (-1, 0, 1)
    assert 0 <= reward.tool <= reward.tool_diversity <= MAX_F_TOOL + 1e-9
    assert reward.total == pytest.approx(0.1 * reward.fast + 0.5 * reward.reasoning + 0.4 * reward.tool)
    assert (reward.reasoning == -1) == bool(episode.errors)
    assert (reward.fast == -1) == (not episode.fast.format_ok)
    if reward.tool > 0:
        assert episode.final_answer == label
    distinct_valid = {c.name for c in episode.tool_calls if c.valid}
    assert reward.tool_diversity == pytest.approx(0.2 * len(distinct_valid))


@PROPERTY_SETTINGS
@given(episodes)
def test_reasoning_reward_credits_exactly_one_label_when_the_format_holds(turns):
    episode = parse_episode(turns)
    live, spoof = (dt_grpo_reward(episode, label).reasoning for label in ("live", "spoof"))
    if not episode.reasoning_format_ok:
        assert live == spoof == -1
    else:
        assert live + spoof == (1 if episode.final_answer else 0)


@PROPERTY_SETTINGS
@given(episodes, labels, st.data())
def test_calling_a_tool_again_adds_nothing(turns, label, data):
    episode = parse_episode(turns, max_tool_calls=20)
    valid_turns = [i + 1 for i, turn in enumerate(episode.turns) if turn.tool_call and turn.tool_call.valid]
    if not valid_turns or episode.final_answer is None:
        return
    repeated = data.draw(st.sampled_from(valid_turns))
    longer = [*turns[: repeated + 1], turns[repeated], *turns[repeated + 1 :]]
    before, after = (dt_grpo_reward(parse_episode(t, max_tool_calls=20), label) for t in (turns, longer))
    assert after.tool == pytest.approx(before.tool)
    assert after.total == pytest.approx(before.total)


@PROPERTY_SETTINGS
@given(episodes, labels)
def test_st_grpo_is_bounded_and_stricter_than_dt_grpo_on_format(turns, label):
    episode = parse_episode(turns)
    st_reward, dt_reward = st_grpo_reward(episode, label), dt_grpo_reward(episode, label)
    assert -1 <= st_reward.total <= 2
    assert st_reward.tool_bonus <= st_reward.accuracy
    assert st_reward.reasoning_format <= dt_reward.reasoning_format
    assert st_reward.total == st_reward.reasoning_format + st_reward.accuracy + st_reward.tool_bonus


@PROPERTY_SETTINGS
@given(st.text(), labels, st.integers(0, 10_000), st.integers(1, 3000))
def test_rft_fas_terms_are_bounded(text, label, num_tokens, max_length):
    reward = rft_fas_reward(text, label, num_tokens, RftFasCoefficients(max_length=max_length))
    assert reward.format in (0, 1)
    assert reward.cls in (0, 1)
    assert abs(reward.res) == pytest.approx(min(1.0, num_tokens / max_length))
    assert (reward.res >= 0) == (reward.cls == 1 or num_tokens == 0)
    assert reward.total == pytest.approx(reward.format + reward.cls + reward.res)


@PROPERTY_SETTINGS
@given(
    st.lists(
        st.tuples(
            st.text() | st.text().map(lambda t: [{"role": "assistant", "content": t}]),
            labels,
            st.integers(0, 3000),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_rft_fas_adapters_accept_any_completion(rows):
    completions, label, lengths = map(list, zip(*rows, strict=True))
    ids = [[0] * n for n in lengths]
    for func in rft_fas_trl_rewards()[0]:
        rewards = func(prompts=[None] * len(rows), completions=completions, completion_ids=ids, label=label)
        assert len(rewards) == len(rows) and all(math.isfinite(r) for r in rewards)


@PROPERTY_SETTINGS
@given(st.lists(st.tuples(episodes | st.lists(st.text(), max_size=4), labels), min_size=1, max_size=5))
def test_episode_adapters_accept_any_episode(rows):
    episode_turns, label = map(list, zip(*rows, strict=True))
    for func in [*dt_grpo_trl_rewards(DtGrpoCoefficients())[0], *st_grpo_trl_rewards()[0]]:
        rewards = func(
            prompts=[None] * len(rows), completions=[""] * len(rows), episode_turns=episode_turns, label=label
        )
        assert len(rewards) == len(rows) and all(math.isfinite(r) for r in rewards)

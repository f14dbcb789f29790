"""Paper 003's DT-GRPO reward (Eq. 10-14, Eq. 12 with min) and the ST-GRPO ablation (Eq. S15), hand-worked.

Defaults: beta_fast 0.1, beta_rsn 0.5, beta_tool 0.4, gamma_k 0.2. Every episode below is labelled spoof.
"""

import json

import pytest

from rft.parsing import parse_episode
from rft.rewards.dt_grpo import (
    PAPER_COEFFICIENTS,
    DtGrpoCoefficients,
    dt_grpo_reward,
    fast_reward,
    reasoning_reward,
    st_grpo_reward,
    tool_diversity_score,
    tool_reward,
)
from rft.tools import TOOL_NAMES

FAST_SPOOF = "<Spoof><reason>Screen glare on the cheek.</reason>"
FAST_REAL = "<Real><reason>Natural skin.</reason>"
FAST_BAD = "Spoof, because of glare."
SAYS_SPOOF = "<think>Moire pattern in the spectrum.</think><answer><Spoof></answer>"
SAYS_REAL = "<think>Nothing suspicious.</think><answer><Real></answer>"
ZOOM = {"bbox": [40, 60, 120, 140]}


def call(name: str, arguments: dict | None = None) -> str:
    payload = json.dumps({"name": name, "arguments": arguments if arguments is not None else {}})
    return f"<think>Test a hypothesis with {name}.</think>\n<tool_call>\n{payload}\n</tool_call>"


NAN_ZOOM = (
    "<think>t</think><tool_call>"
    + '{"name": "ZoomInTool", "arguments": {"bbox": [NaN, 0, 9, 9]}}'
    + "</tool_call>"
)


def terms(turns, label="spoof", coefficients=PAPER_COEFFICIENTS, max_tool_calls=3):
    reward = dt_grpo_reward(parse_episode(turns, max_tool_calls), label, coefficients)
    return reward.fast, reward.reasoning, reward.tool, reward.total


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        # (R_fast, R_rsn, R_tool, R)
        # Everything right, two distinct tools: 0.1*1 + 0.5*1 + 0.4*(0.2+0.2) = 0.76
        ([FAST_SPOOF, call("ZoomInTool", ZOOM), call("FFTTool"), SAYS_SPOOF], (1, 1, 0.4, 0.76)),
        # No tool: 0.1*1 + 0.5*1 + 0.4*0 = 0.6
        ([FAST_SPOOF, SAYS_SPOOF], (1, 1, 0, 0.6)),
        # Fast format wrong, gate closes on its class: 0.1*(-1) + 0.5*1 + 0.4*0.2 = 0.48
        ([FAST_BAD, call("LBPTool"), SAYS_SPOOF], (-1, 1, 0.2, 0.48)),
        # Fast format right, fast class wrong: 0.1*(0+0) + 0.5*1 + 0.4*0.2 = 0.58
        ([FAST_REAL, call("HOGTool"), SAYS_SPOOF], (0, 1, 0.2, 0.58)),
        # Tools used only in a wrong episode: R_tool gated to 0; 0.1*1 + 0.5*(0+0) + 0.4*0 = 0.1
        ([FAST_SPOOF, call("ZoomInTool", ZOOM), call("FFTTool"), SAYS_REAL], (1, 0, 0, 0.1)),
        # The same tool twice counts once: 0.1*1 + 0.5*1 + 0.4*0.2*min(2, 1) = 0.68
        ([FAST_SPOOF, call("FFTTool"), call("FFTTool"), SAYS_SPOOF], (1, 1, 0.2, 0.68)),
        # Invalid call mid-episode (P out of range): R_rsn = -1 and the bad LBP call earns nothing;
        # 0.1*1 + 0.5*(-1) + 0.4*(0.2+0.2) = -0.24
        (
            [FAST_SPOOF, call("ZoomInTool", ZOOM), call("LBPTool", {"P": 100}), call("FFTTool"), SAYS_SPOOF],
            (1, -1, 0.4, -0.24),
        ),
        # NaN box: invalid; 0.1*1 + 0.5*(-1) + 0.4*0.2 = -0.32
        ([FAST_SPOOF, NAN_ZOOM, call("WaveletTransformTool"), SAYS_SPOOF], (1, -1, 0.2, -0.32)),
        # Unknown tool: invalid; 0.1*1 + 0.5*(-1) + 0.4*0 = -0.4
        ([FAST_SPOOF, call("CropTool"), SAYS_SPOOF], (1, -1, 0, -0.4)),
        # Wrong reasoning format (no <think>), right answer: 0.1*1 + 0.5*(-1) + 0.4*0 = -0.4
        ([FAST_SPOOF, "<answer><Spoof></answer>"], (1, -1, 0, -0.4)),
        # Hit the 3-call limit without answering: no CLS_final; 0.1*1 + 0.5*(0+0) + 0.4*0 = 0.1
        ([FAST_SPOOF, call("FFTTool"), call("LBPTool"), call("HOGTool")], (1, 0, 0, 0.1)),
        # A fourth call is beyond the limit: invalid, uncounted; 0.1*1 + 0.5*(-1) + 0.4*(0.2*3) = -0.16
        (
            [
                FAST_SPOOF,
                call("FFTTool"),
                call("LBPTool"),
                call("HOGTool"),
                call("EdgeDetectionTool"),
                SAYS_SPOOF,
            ],
            (1, -1, 0.6, -0.16),
        ),
        # A turn after the answer breaks the format; its call is outside turns 2..L-1:
        # 0.1*1 + 0.5*(-1) + 0.4*0.2 = -0.32
        ([FAST_SPOOF, call("FFTTool"), SAYS_SPOOF, call("LBPTool")], (1, -1, 0.2, -0.32)),
        # Only the fast answer: the reasoning format is broken; 0.1*1 + 0.5*(-1) + 0.4*0 = -0.4
        ([FAST_SPOOF], (1, -1, 0, -0.4)),
        # Everything wrong: 0.1*(-1) + 0.5*(-1) + 0.4*0 = -0.6
        ([FAST_BAD, "I think it is a spoof."], (-1, -1, 0, -0.6)),
    ],
)
def test_hand_worked_rewards(turns, expected):
    assert terms(turns) == pytest.approx(expected)


def test_all_six_tools_when_the_limit_allows():
    turns = [FAST_SPOOF, call("ZoomInTool", ZOOM), *(call(name) for name in TOOL_NAMES[1:]), SAYS_SPOOF]
    # 0.1*1 + 0.5*1 + 0.4*(6*0.2) = 1.08
    assert terms(turns, max_tool_calls=6) == pytest.approx((1, 1, 1.2, 1.08))


def test_live_label():
    # 0.1*0 (fast says spoof) + 0.5*1 + 0.4*0.2 = 0.58
    assert terms([FAST_SPOOF, call("FFTTool"), SAYS_REAL], label="live") == pytest.approx((0, 1, 0.2, 0.58))
    assert terms([FAST_SPOOF, call("FFTTool"), SAYS_REAL], label=0) == pytest.approx((0, 1, 0.2, 0.58))


def test_coefficients_are_configurable_per_tool():
    gammas = dict.fromkeys(TOOL_NAMES, 0.1) | {"ZoomInTool": 0.5}
    coefficients = DtGrpoCoefficients(beta_fast=0.2, beta_rsn=0.3, beta_tool=0.5, tool_weights=gammas)
    turns = [FAST_SPOOF, call("ZoomInTool", ZOOM), call("FFTTool"), SAYS_SPOOF]
    # 0.2*1 + 0.3*1 + 0.5*(0.5+0.1) = 0.8
    assert terms(turns, coefficients=coefficients) == pytest.approx((1, 1, 0.6, 0.8))


def test_reward_object_carries_every_term():
    episode = parse_episode([FAST_BAD, call("FFTTool"), NAN_ZOOM, SAYS_SPOOF])
    reward = dt_grpo_reward(episode, "spoof")
    assert (reward.fast_format, reward.fast) == (-1, -1)
    assert (reward.reasoning_format, reward.reasoning) == (-1, -1)
    assert (reward.tool_diversity, reward.tool) == pytest.approx((0.2, 0.2))
    assert reward.total == pytest.approx(0.1 * -1 + 0.5 * -1 + 0.4 * 0.2)


def test_tool_diversity_is_paid_only_for_a_correct_answer():
    episode = parse_episode([FAST_SPOOF, call("FFTTool"), call("LBPTool"), SAYS_REAL])
    weights = DtGrpoCoefficients().tool_weights
    assert tool_diversity_score(episode, weights) == pytest.approx(0.4)  # 0.2 + 0.2
    assert tool_reward(episode, "spoof", weights) == 0.0
    assert tool_reward(episode, "live", weights) == pytest.approx(0.4)
    assert fast_reward(episode.fast, "spoof") == 1.0
    assert reasoning_reward(episode, "spoof") == 0.0


@pytest.mark.parametrize(
    "weights",
    [
        dict.fromkeys(TOOL_NAMES[1:], 0.2),  # ZoomInTool missing
        dict.fromkeys(TOOL_NAMES, 0.2) | {"ZoomTool": 0.2},  # misspelt extra
    ],
)
def test_tool_weights_must_name_every_tool(weights):
    with pytest.raises(ValueError, match="tool_weights must name each tool once"):
        DtGrpoCoefficients(tool_weights=weights)


def test_coefficients_keep_their_own_copy_of_the_tool_weights():
    gammas = dict.fromkeys(TOOL_NAMES, 0.2)
    coefficients = DtGrpoCoefficients(tool_weights=gammas)
    gammas["FFTTool"] = 1.0
    assert coefficients.tool_weights["FFTTool"] == 0.2


# ST-GRPO, Eq. S15: R = R_rsn^fmt + R_rsn^acc + 1_tool * 1[R_rsn^acc > 0]; only ZoomInTool is allowed.


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        # (R_rsn^fmt, R_rsn^acc, bonus, R)
        ([FAST_SPOOF, call("ZoomInTool", ZOOM), SAYS_SPOOF], (0, 1, 1, 2)),  # 0 + 1 + 1*1
        ([FAST_SPOOF, call("ZoomInTool", ZOOM), SAYS_REAL], (0, 0, 0, 0)),  # 0 + 0 + 1*0
        ([FAST_SPOOF, SAYS_SPOOF], (0, 1, 0, 1)),  # no tool: 0 + 1 + 0*1
        # Another tool is an invalid call in ST-GRPO: -1 + 1 + 0*1 = 0
        ([FAST_SPOOF, call("FFTTool"), SAYS_SPOOF], (-1, 1, 0, 0)),
        # ZoomIn and another tool: the penalty stays, the ZoomIn bonus too: -1 + 1 + 1*1 = 1
        ([FAST_SPOOF, call("ZoomInTool", ZOOM), call("HOGTool"), SAYS_SPOOF], (-1, 1, 1, 1)),
        # An invalid ZoomIn call is no tool use: -1 + 1 + 0*1 = 0
        ([FAST_SPOOF, NAN_ZOOM, SAYS_SPOOF], (-1, 1, 0, 0)),
        # S15 does not gate accuracy by format: a malformed turn still keeps R_acc; -1 + 1 + 1*1 = 1
        ([FAST_SPOOF, call("ZoomInTool", ZOOM), "<think>x</think>", SAYS_SPOOF], (-1, 1, 1, 1)),
        # S15 has no fast term: a broken fast answer changes nothing; 0 + 1 + 1*1 = 2
        ([FAST_BAD, call("ZoomInTool", ZOOM), SAYS_SPOOF], (0, 1, 1, 2)),
        # Limit hit without answer: 0 + 0 + 1*0 = 0
        ([FAST_SPOOF, *[call("ZoomInTool", ZOOM)] * 3], (0, 0, 0, 0)),
    ],
)
def test_st_grpo_hand_worked(turns, expected):
    reward = st_grpo_reward(parse_episode(turns), "spoof")
    assert (reward.reasoning_format, reward.accuracy, reward.tool_bonus, reward.total) == expected


def test_a_tool_outside_the_runs_set_earns_nothing():
    from rft.config import RewardCoefficients
    from rft.methods import method_named
    from rft.trainers.grpo_setup import reward_coefficients

    limited = method_named("dt_grpo").coefficients({}, tools=("ZoomInTool", "LBPTool"))
    assert limited.tool_weights == {
        name: (0.2 if name in ("ZoomInTool", "LBPTool") else 0.0) for name in TOOL_NAMES
    }
    turns = [FAST_SPOOF, call("FFTTool"), call("ZoomInTool", ZOOM), SAYS_SPOOF]
    assert terms(turns)[2] == pytest.approx(0.4)  # every tool counts by default
    assert terms(turns, coefficients=limited)[2] == pytest.approx(0.2)  # FFTTool is outside the set
    # The config's own gamma_k stay for the tools in the set; the job's path gives the same.
    given = RewardCoefficients(tool_weights={"ZoomInTool": 0.5, "FFTTool": 0.5})
    from_config = reward_coefficients("dt_grpo", given, ("ZoomInTool",))
    assert from_config.tool_weights["ZoomInTool"] == 0.5 and from_config.tool_weights["FFTTool"] == 0.0

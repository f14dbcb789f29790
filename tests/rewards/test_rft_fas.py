"""Paper 001's rewards (Eq. 3-6), hand-worked: R_all = R_format + R_cls + R_res, R_res = +-min(1, len / L)."""

import pytest

from rft.parsing import parse_think_answer
from rft.rewards.rft_fas import (
    RftFasCoefficients,
    class_reward,
    format_reward,
    reasoning_consistency_reward,
    rft_fas_reward,
)

SAYS_FAKE = "<thinking>Paper texture and flat shading.</thinking><answer>fake</answer>"
SAYS_REAL = "<thinking>Natural skin.</thinking><answer>real</answer>"


def components(text, label, num_tokens, **coefficients):
    reward = rft_fas_reward(text, label, num_tokens, RftFasCoefficients(**coefficients))
    return reward.format, reward.cls, reward.res, reward.total


@pytest.mark.parametrize(
    ("text", "label", "num_tokens", "expected"),
    [
        # format, cls, res, total
        (SAYS_FAKE, "spoof", 600, (1, 1, 0.5, 2.5)),  # res = 600 / 1200; 1 + 1 + 0.5
        (SAYS_FAKE, "spoof", 1200, (1, 1, 1, 3)),  # res = min(1, 1200 / 1200)
        (SAYS_FAKE, "spoof", 3000, (1, 1, 1, 3)),  # res = min(1, 2.5): capped at L
        (SAYS_REAL, "live", 0, (1, 1, 0, 2)),  # res = 0 / 1200
        (SAYS_FAKE, "live", 300, (1, 0, -0.25, 0.75)),  # wrong class: res = -300 / 1200; 1 + 0 - 0.25
        (SAYS_REAL, "spoof", 5000, (1, 0, -1, 0)),  # res = -min(1, 5000 / 1200); 1 + 0 - 1
        # Format wrong (text outside the blocks) but the only answer is read and right: 0 + 1 + 120 / 1200.
        ("Answer: " + SAYS_FAKE, "spoof", 120, (0, 1, 0.1, 1.1)),
        # P_class undefined (no answer block) counts as incorrect: 0 + 0 - 600 / 1200.
        ("<thinking>Hmm.</thinking>", "spoof", 600, (0, 0, -0.5, -0.5)),
        # 'Real' is not the class word 'real': no format, no class; 0 + 0 - 240 / 1200.
        ("<thinking>a</thinking><answer>Real</answer>", "live", 240, (0, 0, -0.2, -0.2)),
        ("", "live", 0, (0, 0, 0, 0)),  # nothing at all: -0 / 1200
    ],
)
def test_hand_worked_rewards(text, label, num_tokens, expected):
    assert components(text, label, num_tokens) == pytest.approx(expected)


def test_expected_length_is_configurable():
    # L = 600: res = 300 / 600 = 0.5; 1 + 1 + 0.5
    assert components(SAYS_FAKE, "spoof", 300, max_length=600) == pytest.approx((1, 1, 0.5, 2.5))


def test_weights_reproduce_the_ablations():
    # w/o R_res (Table 3): 1 * 1 + 1 * 1 + 0 * 0.5 = 2
    assert components(SAYS_FAKE, "spoof", 600, res_weight=0.0) == pytest.approx((1, 1, 0.5, 2))
    # w/o R_format: 0 * 1 + 1 * 0 + 1 * (-0.25) = -0.25
    assert components(SAYS_FAKE, "live", 300, format_weight=0.0) == pytest.approx((1, 0, -0.25, -0.25))


@pytest.mark.parametrize(("label", "cls"), [(1, 1.0), (0, 0.0), ("spoof", 1.0)])
def test_dataset_class_indices_are_labels(label, cls):
    assert rft_fas_reward(SAYS_FAKE, label, 10).cls == cls


def test_unknown_label_raises():
    with pytest.raises(ValueError, match="label must be"):
        rft_fas_reward(SAYS_FAKE, "fake", 10)  # the answer word, not a dataset label


def test_components_agree_with_the_single_reward_functions():
    parsed = parse_think_answer(SAYS_REAL)
    assert format_reward(parsed) == 1.0
    assert class_reward(parsed.predicted, "live") == 1.0
    assert class_reward(None, "live") == 0.0
    assert reasoning_consistency_reward(True, 1800) == 1.0  # min(1, 1.5)
    assert reasoning_consistency_reward(False, 60, max_length=120) == -0.5  # -60 / 120


def test_invalid_lengths_raise():
    with pytest.raises(ValueError, match="num_tokens"):
        reasoning_consistency_reward(True, -1)
    with pytest.raises(ValueError, match="max_length"):
        RftFasCoefficients(max_length=0)

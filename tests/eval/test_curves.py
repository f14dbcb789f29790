"""The learning-curve summary: first against last quarter, next to the step-to-step noise."""

from __future__ import annotations

import math

import pytest

from rft.eval.curves import change_lines, learning_changes, quarter_change, step_noise, step_series


def test_quarter_means_and_noise_by_hand() -> None:
    values = [0.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 3.0]
    change = quarter_change(values, "reward")
    # quarters of 2 steps: (0 + 1) / 2 and (2 + 3) / 2
    assert (change.first, change.last, change.change) == (0.5, 2.5, 2.0)
    # differences 1, -1, 1, 1, 1, -1, 1: mean 3/7, sample variance (4 * (4/7)^2 + 2 * (10/7)^2 + ...) / 6
    diffs = [1, -1, 1, 1, 1, -1, 1]
    mean = sum(diffs) / 7
    expected = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 6 / 2)
    assert change.noise == pytest.approx(expected)
    assert change.rose


def test_a_flat_noisy_curve_does_not_rise() -> None:
    values = [0.5, 0.7, 0.4, 0.6, 0.5, 0.7, 0.45, 0.6]
    change = quarter_change(values)
    assert abs(change.change) < change.noise and not change.rose


def test_a_steady_trend_has_no_noise() -> None:
    assert step_noise([0.0, 0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.0, abs=1e-12)


def test_series_from_a_trainer_log_skip_entries_without_the_key() -> None:
    log = [
        {"step": 1, "reward": 0.1, "tools/distinct_per_episode": 0.0},
        {"step": 2, "reward": 0.3},
        {"step": 3, "reward": 0.5, "tools/distinct_per_episode": 1.0},
        {"step": 3, "train_runtime": 12.0},
    ]
    assert step_series(log, "reward") == [0.1, 0.3, 0.5]
    changes = {c.key: c for c in learning_changes(log)}
    assert set(changes) == {"reward", "tools/distinct_per_episode"}  # final_correct is not in this log
    lines = change_lines("GRPO", list(changes.values()))
    assert lines[3].startswith("| mean total reward | 0.100 | 0.500 | +0.400 |")


def test_one_step_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'reward' has 1 logged steps"):
        quarter_change([0.3], "reward")

"""Alerts from per-step curves, each with the step where it began."""

from __future__ import annotations

import math

from dashboard.alerts import AlertSettings, run_alerts

SETTINGS = AlertSettings(tool_zero_steps=3, malformed_share=0.2, zero_std_share=0.5)


def kinds(episodes: dict, scalars: dict | None = None) -> dict[str, int]:
    return {a.kind: a.began for a in run_alerts("run", episodes, scalars or {}, SETTINGS)}


def test_a_healthy_run_has_no_alert():
    assert (
        kinds(
            {"tools/rate": {1: 1.0, 2: 0.8, 3: 1.2}, "episodes/malformed_share": {1: 0.1}}, {"loss": {1: 0.2}}
        )
        == {}
    )


def test_tool_collapse_begins_where_the_rate_reached_zero():
    rate = {1: 1.0, 2: 0.5, 3: 0.0, 4: 0.0, 5: 0.0}
    assert kinds({"tools/rate": rate}) == {"tool_collapse": 3}
    assert kinds({"tools/rate": {**rate, 5: 0.1}}) == {}  # two zero steps are fewer than three
    assert kinds({"tools/rate": {1: 0.0, 2: 0.0, 3: 0.0}}) == {}  # a method without tools never collapsed


def test_malformed_zero_std_and_nan_alerts_begin_at_their_first_step():
    episodes = {
        "episodes/malformed_share": {1: 0.0, 2: 0.5, 3: 0.4},
        "groups/zero_std_share": {1: 0.0, 2: 0.0, 3: 1.0},
        "nan_rewards": {1: 0.0, 2: 0.0, 3: 0.0},
    }
    found = kinds(episodes, {"loss": {1: 0.3, 2: 0.2, 3: math.nan}})
    assert found == {"malformed": 2, "zero_reward_std": 3, "nan": 3}

"""Alerts over a run's per-step statistics, each with the step where it began.

- tool collapse: the tool-call rate was above zero, then stayed at zero for `tool_zero_steps` steps or more;
- malformed episodes: the share of episodes that stopped malformed rose above `malformed_share`;
- no learning signal: the share of GRPO groups whose rewards all tie rose to `zero_std_share` or more;
- NaN: a logged loss (or a reward or an advantage in the records) is NaN or infinite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from pydantic import BaseModel, Field


class AlertSettings(BaseModel):
    tool_zero_steps: int = Field(3, ge=1)
    malformed_share: float = Field(0.2, ge=0, le=1)
    zero_std_share: float = Field(0.5, ge=0, le=1)


class Alert(BaseModel):
    run: str
    kind: str
    began: int  # the first step of the latest stretch where the condition held
    until: int  # its last step
    message: str


Series = Mapping[int, float]


def latest_stretch(points: Series, holds: Callable[[float], bool]) -> tuple[int, int, int] | None:
    """(first step, last step, length) of the latest stretch of consecutive logged steps where `holds`."""
    stretch: list[int] = []
    latest = None
    for step in sorted(points):
        if holds(points[step]):
            stretch.append(step)
            latest = (stretch[0], stretch[-1], len(stretch))
        else:
            stretch = []
    return latest


def tool_collapse(run: str, rate: Series, settings: AlertSettings) -> Alert | None:
    stretch = latest_stretch(rate, lambda value: value == 0)
    if stretch is None or stretch[2] < settings.tool_zero_steps:
        return None
    if not any(value > 0 for step, value in rate.items() if step < stretch[0]):
        return None  # never called a tool: a method without tools, not a collapse
    return Alert(
        run=run,
        kind="tool_collapse",
        began=stretch[0],
        until=stretch[1],
        message=f"tool-call rate at zero for {stretch[2]} steps (steps {stretch[0]}-{stretch[1]})",
    )


def malformed(run: str, share: Series, settings: AlertSettings) -> Alert | None:
    stretch = latest_stretch(share, lambda value: value > settings.malformed_share)
    if stretch is None:
        return None
    return Alert(
        run=run,
        kind="malformed",
        began=stretch[0],
        until=stretch[1],
        message=f"malformed episodes above {settings.malformed_share:.0%} of a step (steps {stretch[0]}-{stretch[1]})",
    )


def no_signal(run: str, share: Series, settings: AlertSettings) -> Alert | None:
    stretch = latest_stretch(share, lambda value: value >= settings.zero_std_share)
    if stretch is None:
        return None
    return Alert(
        run=run,
        kind="zero_reward_std",
        began=stretch[0],
        until=stretch[1],
        message=(
            f"{settings.zero_std_share:.0%}+ of GRPO groups have zero reward std, no learning signal "
            f"(steps {stretch[0]}-{stretch[1]})"
        ),
    )


def not_finite(run: str, series: Mapping[str, Series]) -> Alert | None:
    """The first step where any of `series` is NaN or infinite (a count series counts when above zero)."""
    bad = sorted(
        (step, name)
        for name, points in series.items()
        for step, value in points.items()
        if (not math.isfinite(value)) or (name == "nan_rewards" and value > 0)
    )
    if not bad:
        return None
    step, name = bad[0]
    return Alert(run=run, kind="nan", began=step, until=bad[-1][0], message=f"NaN in {name} from step {step}")


def run_alerts(
    run: str,
    episodes: Mapping[str, Series],
    scalars: Mapping[str, Series],
    settings: AlertSettings,
) -> list[Alert]:
    """Every alert of one run; `episodes` are the records' curves (dashboard.records.step_statistics),
    `scalars` the TensorBoard ones. The tool rate comes from the records, else from TensorBoard."""
    rate = episodes.get("tools/rate") or scalars.get("tools/call_frequency") or {}
    losses = {name: points for name, points in scalars.items() if "loss" in name.split("/")[-1]}
    if "nan_rewards" in episodes:
        losses["nan_rewards"] = episodes["nan_rewards"]
    found = [
        tool_collapse(run, rate, settings),
        malformed(run, episodes.get("episodes/malformed_share") or {}, settings),
        no_signal(run, episodes.get("groups/zero_std_share") or {}, settings),
        not_finite(run, losses),
    ]
    return [alert for alert in found if alert is not None]

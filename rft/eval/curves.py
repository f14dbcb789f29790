"""Did a training curve move? The first quarter of the logged steps against the last, next to the curve's
step-to-step noise (issue #15, item 3: a curve "rises" when the change exceeds that noise).

The noise of a per-step series is estimated from its consecutive differences: for a slow trend plus
independent per-step noise of standard deviation s, the differences have standard deviation s * sqrt(2), so
s = std(diff) / sqrt(2); the trend itself barely enters the differences.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The GRPO curves issue #15 asks to rise: the mean total reward, the share of correct final answers and the
# distinct valid tools per episode (rft.trainers.grpo logs each once per step).
LEARNING_CURVES: dict[str, str] = {
    "reward": "mean total reward",
    "episodes/final_correct": "correct final answers",
    "tools/distinct_per_episode": "distinct valid tools / episode",
}


@dataclass(frozen=True)
class QuarterChange:
    """One curve's first-quarter and last-quarter means, and its per-step noise."""

    key: str
    steps: int
    first: float
    last: float
    noise: float

    @property
    def change(self) -> float:
        return self.last - self.first

    @property
    def rose(self) -> bool:
        """The last quarter is above the first by more than one step's noise."""
        return self.change > self.noise


def step_series(log_history: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    """`key`'s value at each training step of a Trainer log (entries without it, e.g. the final summary,
    are skipped)."""
    return [float(entry[key]) for entry in log_history if key in entry and "step" in entry]


def quarter_change(values: Sequence[float], key: str = "") -> QuarterChange:
    """First-quarter and last-quarter means of `values` (at least one step each) and their noise."""
    if len(values) < 2:
        raise ValueError(f"curve {key!r} has {len(values)} logged steps; a change needs at least 2")
    quarter = max(1, len(values) // 4)
    first = sum(values[:quarter]) / quarter
    last = sum(values[-quarter:]) / quarter
    return QuarterChange(key=key, steps=len(values), first=first, last=last, noise=step_noise(values))


def step_noise(values: Sequence[float]) -> float:
    """The per-step noise's standard deviation, from consecutive differences (see the module docstring)."""
    diffs = [b - a for a, b in itertools.pairwise(values)]
    if len(diffs) < 2:
        return abs(diffs[0]) / math.sqrt(2) if diffs else 0.0
    mean = sum(diffs) / len(diffs)
    variance = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    return math.sqrt(variance / 2)


def learning_changes(
    log_history: Sequence[Mapping[str, Any]], keys: Sequence[str] = tuple(LEARNING_CURVES)
) -> list[QuarterChange]:
    """`quarter_change` of each curve in `keys` that the log has at two steps or more."""
    changes = []
    for key in keys:
        values = step_series(log_history, key)
        if len(values) >= 2:
            changes.append(quarter_change(values, key))
    return changes


def change_lines(title: str, changes: Sequence[QuarterChange]) -> list[str]:
    """A Markdown table of the changes (the demo prints it after GRPO)."""
    lines = [
        f"{title}: first quarter -> last quarter of the steps, against the step-to-step noise",
        "| curve | first quarter | last quarter | change | noise (1 step) | rose |",
        "|---|---|---|---|---|---|",
    ]
    for change in changes:
        name = LEARNING_CURVES.get(change.key, change.key)
        lines.append(
            f"| {name} | {change.first:.3f} | {change.last:.3f} | {change.change:+.3f} | {change.noise:.3f} "
            f"| {'yes' if change.rose else 'no'} |"
        )
    return lines

"""Does a second tool call pay? Its within-group payoff in GRPO's rollout records.

GRPO's advantage compares the episodes of one group (G samples for one image), so what the policy learns
about calling again after a valid first call is, group by group, the mean reward of the episodes that called
again minus that of the episodes that answered after that one call. Averaged over the groups that hold both
kinds, that difference says whether the tool curve (`tools/distinct_per_episode`) can be expected to rise:
under Eq. 12-14 a second distinct tool adds beta_tool * gamma_k = 0.08 with a right answer, while an invalid
second call sets R_rsn to -1 and costs 0.5 (docs/EFFICACY.md, section 2).

    python -m rft.eval.tool_payoff runs/demo_cpu/grpo/rollouts
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rft.errors import RftError, run_command

STEP_GLOB = "step_*.jsonl"


class RolloutRecordsError(RftError):
    """A rollout folder or record that cannot be read."""


@dataclass(frozen=True)
class SecondCallPayoff:
    """Episodes whose first tool call ran, split by whether they called again, over steps `first_step`..
    `last_step`. `payoff` is the mean over `groups` (groups with both kinds) of the reward difference."""

    first_step: int
    last_step: int
    again: int
    answered: int
    groups: int
    payoff: float | None
    payoff_stderr: float | None
    again_later_call_failed: float | None
    again_correct: float | None
    answered_correct: float | None


def read_rollout_steps(rollout_dir: Path) -> dict[int, list[dict[str, Any]]]:
    """Every step's records from `rollout_dir` (rft.trainers.rollout_records' layout), keyed by step."""
    files = sorted(Path(rollout_dir).glob(STEP_GLOB))
    if not files:
        raise RolloutRecordsError(
            f"{rollout_dir} holds no {STEP_GLOB}; pass a GRPO run's rollout folder (runs/NAME/grpo/rollouts)"
        )
    steps: dict[int, list[dict[str, Any]]] = {}
    for path in files:
        records = [
            _record(path, number, line) for number, line in enumerate(path.read_text().splitlines(), 1)
        ]
        steps[int(path.stem.removeprefix("step_"))] = records
    return steps


def _record(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise RolloutRecordsError(
            f"{path}:{number} is not JSON ({error.msg}); remove or rewrite the line"
        ) from None
    missing = [key for key in ("group", "tool_calls", "reward") if key not in record]
    if missing:
        raise RolloutRecordsError(f"{path}:{number} has no {', '.join(missing)}; not a GRPO rollout record")
    return record


def second_call_payoff(steps: Mapping[int, Sequence[Mapping[str, Any]]]) -> SecondCallPayoff:
    """The payoff of calling again over the given steps (each step's groups are separate groups)."""
    differences: list[float] = []
    again: list[Mapping[str, Any]] = []
    answered: list[Mapping[str, Any]] = []
    for records in steps.values():
        by_group: dict[Any, tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]] = defaultdict(
            lambda: ([], [])
        )
        for record in records:
            calls = record["tool_calls"]
            if calls and calls[0].get("ok"):
                by_group[record["group"]][len(calls) > 1].append(record)
        for stopped, called_again in by_group.values():
            answered += stopped
            again += called_again
            if stopped and called_again:
                differences.append(_mean_reward(called_again) - _mean_reward(stopped))
    return SecondCallPayoff(
        first_step=min(steps, default=0),
        last_step=max(steps, default=0),
        again=len(again),
        answered=len(answered),
        groups=len(differences),
        payoff=statistics.fmean(differences) if differences else None,
        payoff_stderr=statistics.stdev(differences) / math.sqrt(len(differences))
        if len(differences) > 1
        else None,
        again_later_call_failed=_share(
            again, lambda r: not all(call.get("ok") for call in r["tool_calls"][1:])
        ),
        again_correct=_share(again, _correct),
        answered_correct=_share(answered, _correct),
    )


def payoff_by_quarter(steps: Mapping[int, Sequence[Mapping[str, Any]]]) -> list[SecondCallPayoff]:
    """The payoff over all steps, the first quarter of the steps and the last (as rft.eval.curves splits)."""
    ordered = sorted(steps)
    quarter = max(1, len(ordered) // 4)
    return [
        second_call_payoff(steps),
        second_call_payoff({step: steps[step] for step in ordered[:quarter]}),
        second_call_payoff({step: steps[step] for step in ordered[-quarter:]}),
    ]


def payoff_lines(payoffs: Sequence[SecondCallPayoff]) -> list[str]:
    """A Markdown table, one row per payoff."""
    lines = [
        "| steps | called again / answered | groups with both | payoff (reward, again - answered) "
        "| again: later call failed | again: correct | answered: correct |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in payoffs:
        payoff = "-" if p.payoff is None else f"{p.payoff:+.3f}"
        if p.payoff_stderr is not None:
            payoff += f" ± {p.payoff_stderr:.3f}"
        lines.append(
            f"| {p.first_step}-{p.last_step} | {p.again} / {p.answered} | {p.groups} | {payoff} "
            f"| {_percent(p.again_later_call_failed)} | {_percent(p.again_correct)} | {_percent(p.answered_correct)} |"
        )
    return lines


def _mean_reward(records: Sequence[Mapping[str, Any]]) -> float:
    return statistics.fmean(float(record["reward"]) for record in records)


def _correct(record: Mapping[str, Any]) -> bool:
    # R_rsn = 1: well-formed reasoning and the right final answer (Eq. 11).
    return record.get("rewards", {}).get("r_rsn") == 1.0


def _share(records: Sequence[Mapping[str, Any]], predicate: Any) -> float | None:
    return sum(bool(predicate(record)) for record in records) / len(records) if records else None


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rft.eval.tool_payoff",
        description="Within-group payoff of a second tool call in a GRPO run's rollout records: all steps, "
        "the first quarter and the last.",
    )
    parser.add_argument(
        "rollouts", type=Path, help="a GRPO run's rollout folder, e.g. runs/demo_cpu/grpo/rollouts"
    )
    args = parser.parse_args(argv)
    print("\n".join(payoff_lines(payoff_by_quarter(read_rollout_steps(args.rollouts)))))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main, prog="python -m rft.eval.tool_payoff"))

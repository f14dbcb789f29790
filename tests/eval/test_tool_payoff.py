from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rft.eval.tool_payoff import (
    RolloutRecordsError,
    payoff_by_quarter,
    payoff_lines,
    read_rollout_steps,
    second_call_payoff,
)

VALID = {"name": "FFTTool", "ok": True}
FAILED = {"name": "ZoomInTool", "ok": False, "error": "ZoomInTool: bbox: Field required"}


def record(group: int, calls: list[dict], reward: float, r_rsn: float = 1.0) -> dict:
    return {"group": group, "tool_calls": calls, "reward": reward, "rewards": {"r_rsn": r_rsn}}


def write_steps(folder: Path, steps: dict[int, list[dict]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for step, records in steps.items():
        (folder / f"step_{step:06d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_payoff_is_the_mean_within_group_difference() -> None:
    step = [
        # group 0: again 0.68 vs answered 0.60 -> +0.08
        record(0, [VALID, VALID], 0.68),
        record(0, [VALID], 0.60),
        # group 1: again (mean of 0.68 and -0.42, a failed second call) vs answered 0.60 -> -0.47
        record(1, [VALID, VALID], 0.68),
        record(1, [VALID, FAILED], -0.42, r_rsn=-1.0),
        record(1, [VALID], 0.60),
        # group 2 has no episode that called again: not a pair; a failed first call is not counted at all
        record(2, [VALID], 0.60),
        record(2, [FAILED], -0.40, r_rsn=-1.0),
        record(2, [], 0.10, r_rsn=0.0),
    ]
    payoff = second_call_payoff({1: step})
    assert (payoff.again, payoff.answered, payoff.groups) == (3, 3, 2)
    assert payoff.payoff == pytest.approx((0.08 - 0.47) / 2)
    assert payoff.payoff_stderr == pytest.approx(abs(0.08 + 0.47) / 2)  # stdev of two / sqrt(2)
    assert payoff.again_later_call_failed == pytest.approx(1 / 3)
    assert payoff.again_correct == pytest.approx(2 / 3)
    assert payoff.answered_correct == 1.0


def test_a_group_is_one_image_of_one_step() -> None:
    # The same group index at two steps is two images: no pair across steps.
    steps = {1: [record(0, [VALID, VALID], 0.7)], 2: [record(0, [VALID], 0.6)]}
    assert second_call_payoff(steps).groups == 0
    assert second_call_payoff(steps).payoff is None


def test_quarters_follow_the_curves_split(tmp_path: Path) -> None:
    steps = {
        step: [record(0, [VALID, VALID], 0.5 + 0.1 * step), record(0, [VALID], 0.6)] for step in range(1, 9)
    }
    whole, first, last = payoff_by_quarter(read_rollout_steps(write_steps(tmp_path / "rollouts", steps)))
    assert (whole.first_step, whole.last_step, first.first_step, first.last_step) == (1, 8, 1, 2)
    assert (last.first_step, last.last_step) == (7, 8)
    assert first.payoff == pytest.approx(0.5 + 0.15 - 0.6)
    assert last.payoff == pytest.approx(0.5 + 0.75 - 0.6)
    table = payoff_lines([whole, first, last])
    assert table[2].startswith("| 1-8 | 8 / 8 | 8 |") and "| 7-8 | 2 / 2 | 2 | +0.650" in table[4]


def test_a_broken_line_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    folder = write_steps(tmp_path, {3: [record(0, [VALID], 0.6)]})
    with (folder / "step_000003.jsonl").open("a") as handle:
        handle.write('{"group": 0, "tool_ca\n')
    with pytest.raises(RolloutRecordsError, match=r"step_000003\.jsonl:2 is not JSON"):
        read_rollout_steps(folder)
    (folder / "step_000003.jsonl").write_text(json.dumps({"group": 0}) + "\n")
    with pytest.raises(RolloutRecordsError, match=r"step_000003\.jsonl:1 has no tool_calls, reward"):
        read_rollout_steps(folder)


def test_command_line_help_and_a_folder_without_steps(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "rft.eval.tool_payoff"]
    assert "rollout folder" in subprocess.run([*command, "--help"], capture_output=True, text=True).stdout
    empty = subprocess.run([*command, str(tmp_path)], capture_output=True, text=True)
    assert empty.returncode == 2
    assert empty.stderr.strip().count("\n") == 0 and "holds no step_*.jsonl" in empty.stderr
    done = subprocess.run(
        [*command, str(write_steps(tmp_path, {1: [record(0, [VALID], 0.6)]}))], capture_output=True, text=True
    )
    assert done.returncode == 0 and "| 1-1 | 0 / 1 | 0 | - |" in done.stdout

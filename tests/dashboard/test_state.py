"""What the page is built from: the curves of a run, and one step's episodes as GRPO groups."""

from __future__ import annotations

from pathlib import Path

from dashboard.state import Dashboard


def test_a_tool_that_stops_being_called_falls_to_zero_on_its_curve(finished_runs: Path):
    dashboard = Dashboard(finished_runs)
    dashboard.refresh()
    episodes, scalars = dashboard.curves["collapse/grpo"]
    assert episodes["tools/rate/FFTTool"] == {1: 0.5, 2: 0.5, 3: 0.0, 4: 0.0, 5: 0.0, 6: 0.0}
    assert set(scalars["kl"]) == set(range(1, 7))  # TensorBoard's curves, without the "train/" prefix
    assert {chart["id"] for chart in dashboard.charts()} >= {
        "e:reward",
        "e:rewards/component/tool",
        "time",
        "s:kl",
    }


def test_a_step_is_its_groups_with_answers_and_image_paths(finished_runs: Path):
    dashboard = Dashboard(finished_runs)
    dashboard.refresh()
    view = dashboard.step_view("healthy/grpo", 2)
    assert [len(group["episodes"]) for group in view["groups"]] == [4, 4]
    first = view["groups"][0]["episodes"][0]
    assert first["label"] == "live" and first["predicted"] == "live" and first["correct"] is True
    assert first["images"][0] == "rollouts/images/step_000002/e000_0.png"
    assert view["choices"]["tool"] == ["FFTTool", "LBPTool", "ZoomInTool"]

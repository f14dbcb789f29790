"""What the page shows, gathered from the run folders on each poll: the runs, their curves, the charts to
draw, the alerts, and one step's episodes grouped as GRPO groups."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from dashboard.alerts import AlertSettings, run_alerts
from dashboard.evals import eval_files, eval_view
from dashboard.logs import LogsReader
from dashboard.paths import find_runs
from dashboard.plots import TIME_TAGS
from dashboard.records import (
    ATTACK_KEY,
    DOMAIN_KEY,
    RecordsReader,
    annotate,
    read_step,
    step_files,
    tool_names,
)
from dashboard.scalars import ScalarsReader

# Curves of the records, in the order of the page: (name or prefix, group).
EPISODE_CHARTS = (
    ("reward", "Rewards"),
    ("rewards/", "Rewards"),
    ("rewards/component/", "Rewards"),
    ("tools/rate", "Tools"),
    ("tools/rate/", "Tools"),
    ("tools/rate_by_attack/", "Tools"),
    ("episodes/turns", "Episodes"),
    ("episodes/tokens", "Episodes"),
    ("episodes/correct_share", "Episodes"),
    ("episodes/malformed_share", "Episodes"),
    ("groups/zero_std_share", "Episodes"),
)
TOOL_RATE_PREFIX = "tools/rate/"
OPTIMISATION_TAGS = ("loss", "kl", "entropy", "grad_norm", "learning_rate")
LOSS = "loss"


def _as_points(by_step: dict[int, dict[str, float]]) -> dict[str, dict[int, float]]:
    """Curve name -> step -> value. A tool's rate is 0 at a recorded step where nobody called it (a step's
    statistics name only the tools called), so a tool that stops being called falls to 0 on its curve."""
    curves: dict[str, dict[int, float]] = {}
    for step, values in by_step.items():
        for name, value in values.items():
            curves.setdefault(name, {})[step] = value
    for name, points in curves.items():
        if name.startswith(TOOL_RATE_PREFIX):
            for step in by_step:
                points.setdefault(step, 0.0)
            curves[name] = dict(sorted(points.items()))
    return curves


class Dashboard:
    """The run folders under `runs_dir`, re-scanned on each poll (a run that starts later appears)."""

    def __init__(self, runs_dir: Path, settings: AlertSettings | None = None) -> None:
        self.runs_dir = runs_dir
        self.settings = settings or AlertSettings()
        self._lock = threading.Lock()
        self._readers: dict[str, tuple[RecordsReader, ScalarsReader, LogsReader]] = {}
        self.curves: dict[str, tuple[dict, dict]] = {}
        self.runs: dict[str, Path] = {}
        self.version = ""

    def refresh(self) -> dict[str, Any]:
        """Re-read every run; the page's state: runs with their steps, charts, alerts and a version that
        changes whenever any curve does."""
        with self._lock:
            self.runs = find_runs(self.runs_dir)
            curves = {}
            for run, folder in self.runs.items():
                if run not in self._readers:
                    self._readers[run] = (RecordsReader(folder), ScalarsReader(folder), LogsReader(folder))
                records, scalars, logs = self._readers[run]
                # A curve both logs hold comes from TensorBoard (every point of it, as the trainer logged).
                curves[run] = (_as_points(records.statistics()), {**logs.series(), **scalars.series()})
            self.curves = curves
        alerts = [
            alert.model_dump()
            for run, (episodes, scalars) in curves.items()
            for alert in run_alerts(run, episodes, scalars, self.settings)
        ]
        runs = [
            {
                "id": run,
                "steps": sorted(step_files(folder)),
                "mean_reward": self._reward_by_step(run),
                "evals": sorted(eval_files(folder)),
            }
            for run, folder in self.runs.items()
        ]
        self.version = hashlib.sha1(json.dumps(curves, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return {"version": self.version, "runs": runs, "charts": self.charts(), "alerts": alerts}

    def _reward_by_step(self, run: str) -> dict[str, float]:
        points = self.curves[run][0].get("reward", {})
        return {str(step): value for step, value in points.items()}

    def charts(self) -> list[dict[str, str]]:
        """Every chart with data in some run, grouped for the page."""
        episode_names = sorted({name for episodes, _ in self.curves.values() for name in episodes})
        scalar_names = sorted({name for _, scalars in self.curves.values() for name in scalars})
        charts: list[dict[str, str]] = []
        for pattern, group in EPISODE_CHARTS:
            for name in episode_names:
                is_match = name.startswith(pattern) and "/" not in name[len(pattern) :] and name != pattern
                if name == pattern or (pattern.endswith("/") and is_match):
                    charts.append({"id": f"e:{name}", "title": name, "group": group})
        shown = set(TIME_TAGS)
        for tag in OPTIMISATION_TAGS:
            if tag in scalar_names:
                charts.append({"id": f"s:{tag}", "title": tag, "group": "Optimisation"})
                shown.add(tag)
        if any(tag in scalar_names for tag in TIME_TAGS):
            title = "time per step (s): rollout / reward / sync / update"
            charts.append({"id": "time", "title": title, "group": "Time"})
        for tag in scalar_names:
            if tag.startswith(("target/", "eval/")) and tag.endswith(("hter", "auc")):
                charts.append({"id": f"s:{tag}", "title": tag, "group": "Evaluation"})
                shown.add(tag)
        for tag in scalar_names:
            if tag not in shown and LOSS in tag.lower():  # each loss term of any trainer on its own curve
                charts.append({"id": f"s:{tag}", "title": tag, "group": "Loss terms"})
                shown.add(tag)
        for tag in scalar_names:
            if tag not in shown:
                charts.append({"id": f"s:{tag}", "title": tag, "group": "All logged scalars"})
        return charts

    def step_view(self, run: str, step: int) -> dict[str, Any]:
        """One step's episodes as GRPO groups, with image URLs and what the filters can choose from."""
        path = step_files(self.runs[run]).get(step)
        if path is None:
            raise KeyError(f"run {run!r} has no records for step {step}")
        episodes = [self._episode_view(run, annotate(record)) for record in read_step(path)]
        groups: dict[Any, list[dict[str, Any]]] = {}
        for episode in episodes:
            groups.setdefault(episode.get("group"), []).append(episode)
        return {
            "run": run,
            "step": step,
            "groups": [{"group": key, "episodes": members} for key, members in groups.items()],
            "choices": {
                "tool": sorted({name for e in episodes for name in tool_names(e)}),
                "attack_type": sorted(
                    {str(e[ATTACK_KEY]) for e in episodes if e.get(ATTACK_KEY) is not None}
                ),
                "domain": sorted({str(e[DOMAIN_KEY]) for e in episodes if e.get(DOMAIN_KEY) is not None}),
                "stop_reason": sorted({str(e.get("stop_reason")) for e in episodes}),
            },
        }

    def eval_view(self, run: str, step: int) -> dict[str, Any]:
        """One evaluation's samples with their scores and image paths (dashboard.evals)."""
        return eval_view(run, self.runs[run], step)

    def _episode_view(self, run: str, record: dict[str, Any]) -> dict[str, Any]:
        # Image paths are relative to the rollouts folder; the page fetches them through /files.
        images = [f"rollouts/{name}" for name in record.get("images") or [] if isinstance(name, str)]
        return {**record, "images": images}

"""The curves, drawn on the server as SVG by matplotlib (no JavaScript plotting, nothing from a CDN).

A chart is named by an id: `e:<name>` is a curve of the records (dashboard.records.step_statistics),
`s:<tag>` a TensorBoard scalar, `time` the four parts of a step's time together. Runs are overlaid, each
with its own colour; every line carries an SVG id `series-<n>` (n: the line's order) and a title naming its
run and curve.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import TypedDict

import matplotlib

matplotlib.use("Agg")
from matplotlib.axes import Axes
from matplotlib.figure import Figure

matplotlib.rcParams["svg.hashsalt"] = "rft-dashboard"  # the same data gives the same SVG
matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller files, searchable
TIME_PARTS = ("rollout", "reward", "weight_sync", "update")
TIME_TAGS = tuple(f"time/{part}_s" for part in TIME_PARTS)

Series = Mapping[int, float]
# run id -> curve name -> step -> value
RunCurves = Mapping[str, Mapping[str, Series]]


def chart_series(
    chart_id: str, runs: Mapping[str, tuple[RunCurves, RunCurves]]
) -> list[tuple[str, str, Series]]:
    """(run, curve name, points) of every line the chart draws; `runs` maps run -> (episodes, scalars)."""
    lines = []
    for run, (episodes, scalars) in runs.items():
        if chart_id == "time":
            lines += [(run, tag, scalars[tag]) for tag in TIME_TAGS if tag in scalars]
        elif chart_id.startswith("e:") and chart_id[2:] in episodes:
            lines.append((run, chart_id[2:], episodes[chart_id[2:]]))
        elif chart_id.startswith("s:") and chart_id[2:] in scalars:
            lines.append((run, chart_id[2:], scalars[chart_id[2:]]))
    return lines


class Point(TypedDict):
    """Where a curve's point is drawn, as fractions of the chart's width and height from its top left."""

    run: str
    step: int
    x: float
    y: float


def render_chart(
    title: str, lines: list[tuple[str, str, Series]], run_order: list[str]
) -> tuple[bytes, list[Point]]:
    """The chart's SVG and where each finite point of each line lies on it (the page's image map)."""
    figure = Figure(figsize=(4.4, 2.7), dpi=100)
    axes = figure.add_subplot()
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ["-", "--", ":", "-."]
    for n, (run, name, points) in enumerate(lines):
        steps = sorted(points)
        colour = colours[run_order.index(run) % len(colours)] if run in run_order else colours[0]
        style = styles[TIME_TAGS.index(name) % len(styles)] if name in TIME_TAGS else "-"
        label = f"{run} {name.removeprefix('time/')}" if name in TIME_TAGS else run
        (line,) = axes.plot(
            steps, [points[s] for s in steps], style, color=colour, marker="o", markersize=3, label=label
        )
        line.set_gid(f"series-{n}")
    axes.set_title(title, fontsize=9)
    axes.set_xlabel("step", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    if len(lines) > 1:
        axes.legend(fontsize=6, loc="best")
    if not lines:
        axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    return buffer.getvalue(), point_positions(figure, axes, lines)


def point_positions(figure: Figure, axes: Axes, lines: list[tuple[str, str, Series]]) -> list[Point]:
    """Each finite point's position as fractions of the figure (valid at any size the image is shown at:
    the SVG scales uniformly), after the layout that `savefig` drew."""
    width, height = figure.bbox.width, figure.bbox.height
    points: list[Point] = []
    for run, _, series in lines:
        for step, value in sorted(series.items()):
            if not math.isfinite(value):
                continue
            x, y = axes.transData.transform((step, value))
            points.append(Point(run=run, step=int(step), x=round(x / width, 4), y=round(1 - y / height, 4)))
    return points

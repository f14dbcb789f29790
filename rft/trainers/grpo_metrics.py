"""Per-step statistics of the rollout episodes (tool use, turns, where episodes stopped), computed on the
gathered summaries of every process so that every rank logs the same numbers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rft.rollout.episode import STOP_REASONS, Episode
from rft.tools import TOOL_NAMES

# Every way an episode can end (STOP_REASONS) gets a metric, 0 when it did not happen, so the curves are
# continuous.
# A call whose name is not a tool (unparsable JSON, an unknown name) is counted under this name.
INVALID_TOOL = "invalid"


@dataclass(frozen=True)
class EpisodeSummary:
    """What the step metrics need of one episode: small, so gathering it across processes is cheap."""

    turns: int
    tools: tuple[str, ...]  # the name of each tool call in order (INVALID_TOOL for a call with no tool)
    failed_calls: int  # calls that returned an error to the model instead of an image
    stop_reason: str
    distinct_tools: int = 0  # distinct tools whose call ran and returned an image (Eq. 12's count)


def summarize(episode: Episode) -> EpisodeSummary:
    return EpisodeSummary(
        turns=len(episode.turns),
        tools=tuple(call.name if call.name in TOOL_NAMES else INVALID_TOOL for call in episode.tool_calls),
        failed_calls=sum(not call.ok for call in episode.tool_calls),
        stop_reason=episode.stop_reason,
        distinct_tools=len({call.name for call in episode.tool_calls if call.ok}),
    )


def episode_metrics(summaries: Sequence[EpisodeSummary]) -> dict[str, float]:
    """`episodes/turns/{mean,min,max}`, `episodes/stop/<reason>` (fraction of episodes),
    `tools/call_frequency` (calls per episode), `tools/failure_frequency` (failed calls per call),
    `tools/distinct_per_episode` (distinct tools that ran, per episode) and `tools/<name>/call_frequency` (calls
    of that tool per episode) for each tool."""
    count = len(summaries)
    if count == 0:
        return {}
    turns = [s.turns for s in summaries]
    calls = Counter(name for s in summaries for name in s.tools)
    total_calls = sum(calls.values())
    stops = Counter(s.stop_reason for s in summaries)
    metrics = {
        "episodes/turns/mean": sum(turns) / count,
        "episodes/turns/min": float(min(turns)),
        "episodes/turns/max": float(max(turns)),
        "tools/call_frequency": total_calls / count,
        "tools/failure_frequency": sum(s.failed_calls for s in summaries) / max(total_calls, 1),
        "tools/distinct_per_episode": sum(s.distinct_tools for s in summaries) / count,
    }
    for name in (*TOOL_NAMES, INVALID_TOOL):
        metrics[f"tools/{name}/call_frequency"] = calls[name] / count
    for reason in sorted(set(STOP_REASONS) | set(stops)):
        metrics[f"episodes/stop/{reason}"] = stops[reason] / count
    return metrics

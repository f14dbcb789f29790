"""Prometheus metrics of one rollout worker (docs/ROLLOUT_SERVER.md lists them)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from rft.rollout.episode import Episode


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tokens = Counter(
            "rollout_generated_tokens", "Tokens sampled by the model", registry=self.registry
        )
        self.requests = Counter(
            "rollout_requests", "Requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.queue = Gauge("rollout_queue_depth", "Requests in flight in this worker", registry=self.registry)
        self.tokens_per_second = Gauge(
            "rollout_tokens_per_second", "Sampled tokens/s of the last request", registry=self.registry
        )
        self.turns = Histogram(
            "rollout_episode_turns",
            "Model turns per episode",
            buckets=(1, 2, 3, 4, 5, 6, 8),
            registry=self.registry,
        )
        self.tool_seconds = Histogram(
            "rollout_tool_call_seconds",
            "Tool call latency",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=self.registry,
        )
        self.weights_version = Gauge(
            "rollout_weights_version", "Weight updates applied", registry=self.registry
        )

    def record_tokens(self, count: int, seconds: float) -> None:
        self.tokens.inc(count)
        if seconds > 0:
            self.tokens_per_second.set(count / seconds)

    def record_episodes(self, groups: Sequence[Sequence[Episode]], seconds: float) -> None:
        episodes = [episode for group in groups for episode in group]
        for episode in episodes:
            self.turns.observe(len(episode.turns))
            for call in episode.tool_calls:
                self.tool_seconds.observe(call.seconds)
        self.record_tokens(sum(episode.completion_tokens for episode in episodes), seconds)

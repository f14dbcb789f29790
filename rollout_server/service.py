"""The state behind the rollout server's routes: the engine once start-up has built it, the shared token,
the metrics, the weights version and whether the engine still serves."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from rft.models.conversation import ConversationTokenizer
from rollout_server.episodes import EpisodeRunner
from rollout_server.errors import EngineNotReady, Forbidden
from rollout_server.metrics import Metrics
from rollout_server.sampling import VLLMSampler

log = logging.getLogger(__name__)

# /readyz trusts a generation that finished this recently instead of probing again, so that a load balancer
# or the worker pool polling it costs the engine next to nothing; a probe that takes longer than
# READY_PROBE_TIMEOUT_S means a wedged engine.
READY_FRESH_S = 5.0
READY_PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Engine:
    """What start-up builds: vLLM's engine (the sampler), the episode runner over it, the tokenizer of both."""

    sampler: VLLMSampler
    runner: EpisodeRunner
    tokenizer: ConversationTokenizer


class RolloutService:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self.metrics = Metrics()
        self.weights_version = 0
        self._engine: Engine | None = None
        self._probe_lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise EngineNotReady("not ready: engine starting")
        return self._engine

    async def check_ready(self) -> str | None:
        """None when the engine serves, else why not (starting, dead, or wedged). A generation that
        finished within READY_FRESH_S counts; otherwise one tiny probe runs, shared by concurrent callers."""
        if self._engine is None:
            return "engine starting"
        sampler = self._engine.sampler
        async with self._probe_lock:
            if time.monotonic() - sampler.last_served < READY_FRESH_S:
                return None
            try:
                await sampler.check_serving(READY_PROBE_TIMEOUT_S)
            except Exception as error:  # whatever the engine raises, it is not serving
                log.error("readiness probe failed: %s: %s", type(error).__name__, error)
                return f"engine not serving ({type(error).__name__}: {error})"[:300]
        return None

    def start(self, engine: Engine) -> None:
        self._engine = engine

    async def stop(self) -> None:
        if self._engine is not None:
            await self._engine.sampler.stop_output_handler()
            self._engine.sampler.shutdown()

    @contextmanager
    def serving(self, endpoint: str) -> Iterator[Engine]:
        """The engine for one request of `endpoint`, counted in the queue depth while it runs and as a 200
        when it ends well (the exception handler counts the others with their status)."""
        engine = self.engine
        self.metrics.queue.inc()
        try:
            yield engine
        finally:
            self.metrics.queue.dec()
        self.metrics.requests.labels(endpoint, "200").inc()

    def authorize(self, authorization: str) -> None:
        """Refuse a state-changing request unless it carries 'Bearer <token>' (compared in constant time)."""
        if not self.token:
            raise Forbidden("this server was started without --token; state-changing endpoints are disabled")
        if not hmac.compare_digest(authorization.encode(), f"Bearer {self.token}".encode()):
            raise Forbidden("missing or wrong token: send 'Authorization: Bearer <token>'")

    def weights_changed(self) -> int:
        """Count a weight or adapter update; returns the new weights version."""
        self.weights_version += 1
        self.metrics.weights_version.set(self.weights_version)
        return self.weights_version


def service_of(request: Request) -> RolloutService:
    return request.app.state.service


# A route's parameter `service: Service` receives the app's RolloutService.
Service = Annotated[RolloutService, Depends(service_of)]

"""Results kept by request id, so that a retried request is answered, not recomputed."""

from __future__ import annotations

import asyncio
import collections
import hashlib
from collections.abc import Awaitable, Callable

from reward_service.api import ScoreRequest, ScoreResponse


class RequestIdReused(ValueError):
    """A request id came back with a different batch: a client bug that must not return stale scores."""


def fingerprint(request: ScoreRequest) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


class IdempotentResults:
    """A bounded cache of finished responses plus the futures of running ones, keyed by request id."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self.done: collections.OrderedDict[str, tuple[str, ScoreResponse]] = collections.OrderedDict()
        self.running: dict[str, tuple[str, asyncio.Future[ScoreResponse]]] = {}
        self.hits = 0

    async def get_or_compute(
        self, request: ScoreRequest, compute: Callable[[ScoreRequest], Awaitable[ScoreResponse]]
    ) -> ScoreResponse:
        key, print_ = request.request_id, fingerprint(request)
        seen = self.done.get(key) or self.running.get(key)
        if seen is not None:
            if seen[0] != print_:
                raise RequestIdReused(f"request_id {key!r} was already used for another batch")
            self.hits += 1
            return seen[1] if isinstance(seen[1], ScoreResponse) else await seen[1]
        future = asyncio.ensure_future(compute(request))
        self.running[key] = (print_, future)
        try:
            response = await future
        finally:
            self.running.pop(key, None)
        self.done[key] = (print_, response)
        while len(self.done) > self.capacity:
            self.done.popitem(last=False)
        return response

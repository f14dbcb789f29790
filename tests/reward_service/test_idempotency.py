"""A replica's request-id cache: repeated ids are answered from it, running duplicates are awaited."""

import asyncio

import pytest

from reward_service.api import ScoreRequest
from reward_service.core import score_batch
from reward_service.idempotency import IdempotentResults, RequestIdReused


def request(request_id: str, n: int, label: str = "live") -> ScoreRequest:
    rollouts = [{"id": f"r{i}", "label": label, "turns": ["<Real><reason>ok</reason>"]} for i in range(n)]
    return ScoreRequest(request_id=request_id, method="dt_grpo", rollouts=rollouts)


class CountingScorer:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, req: ScoreRequest):
        self.calls += 1
        await asyncio.sleep(0.01)  # long enough for a duplicate to arrive while this one runs
        return score_batch(req)


def test_repeated_id_is_answered_from_the_cache():
    cache, scorer = IdempotentResults(), CountingScorer()

    async def twice():
        return await cache.get_or_compute(request("a", 3), scorer), await cache.get_or_compute(
            request("a", 3), scorer
        )

    first, second = asyncio.run(twice())
    assert first is second and scorer.calls == 1 and cache.hits == 1


def test_running_duplicate_is_awaited_not_recomputed():
    cache, scorer = IdempotentResults(), CountingScorer()

    async def together():
        return await asyncio.gather(*(cache.get_or_compute(request("b", 3), scorer) for _ in range(5)))

    results = asyncio.run(together())
    assert scorer.calls == 1 and all(r is results[0] for r in results)


def test_id_reused_for_another_batch_is_refused():
    cache, scorer = IdempotentResults(), CountingScorer()

    async def reuse():
        await cache.get_or_compute(request("c", 3), scorer)
        await cache.get_or_compute(request("c", 3, label="spoof"), scorer)

    with pytest.raises(RequestIdReused, match="'c'"):
        asyncio.run(reuse())


def test_cache_is_bounded():
    cache, scorer = IdempotentResults(capacity=2), CountingScorer()

    async def many():
        for name in "abc":
            await cache.get_or_compute(request(name, 1), scorer)

    asyncio.run(many())
    assert list(cache.done) == ["b", "c"]

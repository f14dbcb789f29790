"""A replica's request-id map: a repeated id is answered from it, an id reused for another body is refused."""

import pytest

from reward_service.api import ScoreRequest
from reward_service.core import score_batch
from reward_service.idempotency import IdempotentResults, RequestIdReused, fingerprint


def body(n: int, label: str = "live") -> bytes:
    rollouts = [{"id": f"r{i}", "label": label, "turns": ["<Real><reason>ok</reason>"]} for i in range(n)]
    return ScoreRequest(request_id="a", method="dt_grpo", rollouts=rollouts).model_dump_json().encode()


class CountingScorer:
    def __init__(self, request_body: bytes) -> None:
        self.body = request_body
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return score_batch(ScoreRequest.model_validate_json(self.body)).model_dump_json().encode()


def test_repeated_id_is_answered_from_the_map():
    cache, scorer = IdempotentResults[bytes](), CountingScorer(body(3))
    first = cache.get_or_compute("a", fingerprint(scorer.body), scorer)
    second = cache.get_or_compute("a", fingerprint(scorer.body), scorer)
    assert first is second and scorer.calls == 1 and cache.hits == 1


def test_id_reused_for_another_body_is_refused():
    cache = IdempotentResults[bytes]()
    cache.get_or_compute("c", fingerprint(body(3)), CountingScorer(body(3)))
    other = CountingScorer(body(3, label="spoof"))
    with pytest.raises(RequestIdReused, match="'c'"):
        cache.get_or_compute("c", fingerprint(other.body), other)
    assert other.calls == 0


def test_a_failed_computation_stores_nothing():
    cache = IdempotentResults[bytes]()

    def fails() -> bytes:
        raise RuntimeError("replica trouble")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("d", "print", fails)
    scorer = CountingScorer(body(1))
    cache.get_or_compute("d", "print", scorer)
    assert scorer.calls == 1 and cache.hits == 0


def test_map_is_bounded_and_keeps_the_recently_used():
    cache = IdempotentResults[str](capacity=2)
    for name in "ab":
        cache.get_or_compute(name, "print", lambda name=name: name)
    cache.get_or_compute("a", "print", lambda: "recomputed")  # a hit: "a" becomes the most recent
    cache.get_or_compute("c", "print", lambda: "c")
    assert list(cache.done) == ["a", "c"] and cache.done["a"][1] == "a"


def test_fingerprint_tells_bodies_apart():
    assert fingerprint(body(2)) == fingerprint(body(2))
    assert fingerprint(body(2)) != fingerprint(body(2, label="spoof"))


def test_map_stays_under_its_byte_bound():
    cache = IdempotentResults[bytes](capacity=1000, max_bytes=10_000)
    for i in range(200):
        cache.get_or_compute(f"id{i}", "f" * 64, lambda i=i: bytes(100 + 37 * (i % 50)))
        stored = sum(len(answer) + len(key) + len(print_) for key, (print_, answer, _) in cache.done.items())
        assert cache.bytes == stored <= 10_000
    assert "id199" in cache.done and "id0" not in cache.done  # the least recently used went first


def test_an_answer_over_the_byte_bound_is_returned_but_not_kept():
    cache = IdempotentResults[bytes](max_bytes=1000)
    cache.get_or_compute("small", "print", lambda: b"s" * 10)
    assert cache.get_or_compute("huge", "print", lambda: b"h" * 5000) == b"h" * 5000
    assert list(cache.done) == ["small"] and cache.bytes == 10 + len("small") + len("print")

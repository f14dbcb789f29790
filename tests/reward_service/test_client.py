"""The HTTP client without a service: how it cuts a batch into chunks and checks what comes back."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reward_service.api import ScoreRequest
from reward_service.client import RewardClient, RewardServiceError, chunk_bounds
from reward_service.core import score_batch


@given(count=st.integers(0, 3000), chunk_size=st.integers(1, 200), min_chunks=st.integers(1, 16))
def test_chunks_partition_the_batch_in_order(count, chunk_size, min_chunks):
    bounds = chunk_bounds(count, chunk_size, min_chunks)
    assert bounds[0][0] == 0 and bounds[-1][1] == count
    assert all(end == next_first for (_, end), (next_first, _) in itertools.pairwise(bounds))
    sizes = [end - first for first, end in bounds]
    assert max(sizes) <= chunk_size or count == 0
    assert max(sizes) - min(sizes) <= 1
    assert len(bounds) >= min(min_chunks, max(count, 1))


def test_64_rollouts_over_two_replicas_are_two_chunks_of_32():
    assert chunk_bounds(64, 64, 2) == [(0, 32), (32, 64)]
    assert chunk_bounds(64, 64, 1) == [(0, 64)]
    assert chunk_bounds(3, 64, 8) == [(0, 1), (1, 2), (2, 3)]


def rollouts(n: int) -> list[dict]:
    return [{"id": f"r{i}", "label": "live", "turns": ["<Real><reason>ok</reason>"]} for i in range(n)]


class FakeService:
    """Stands in for `RewardClient._post`: scores each chunk in-process, then lets a test spoil the answer."""

    def __init__(self, spoil=lambda scores: scores) -> None:
        self.requests: list[ScoreRequest] = []
        self.spoil = spoil

    @property
    def request_ids(self) -> list[str]:
        return [request.request_id for request in self.requests]

    def __call__(self, path: str, body: bytes) -> bytes:
        request = ScoreRequest.model_validate_json(body)
        self.requests.append(request)
        answer = score_batch(request)
        return answer.model_copy(update={"scores": self.spoil(answer.scores)}).model_dump_json().encode()


def client_with(service: FakeService, replicas: int, **options) -> RewardClient:
    client = RewardClient("http://127.0.0.1:9", spread_over_replicas=True, **options)
    client.replica_count = lambda: replicas  # what /readyz would say
    client._post = service
    return client


def test_each_replica_gets_a_chunk_named_by_its_range_and_every_id_comes_back_once():
    service = FakeService()
    with client_with(service, replicas=2) as client:
        result = client.score("dt_grpo", rollouts(64), request_id="batch")
    assert sorted(service.request_ids) == ["batch/0-32", "batch/32-64"]
    assert [s.id for s in result] == [f"r{i}" for i in range(64)]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda scores: scores[:-1],  # a score lost
        lambda scores: [*scores, scores[0]],  # a score duplicated
        lambda scores: scores[::-1],  # scores of the wrong rollouts
    ],
)
def test_an_answer_without_each_id_exactly_once_is_an_error(spoil):
    with (
        client_with(FakeService(spoil), replicas=2) as client,
        pytest.raises(RewardServiceError, match="once"),
    ):
        client.score("dt_grpo", rollouts(10))


def test_duplicate_ids_in_different_chunks_are_refused_before_sending():
    service = FakeService()
    batch = [*rollouts(4), *rollouts(1)]
    with client_with(service, replicas=2) as client, pytest.raises(ValueError, match="unique"):
        client.score("dt_grpo", batch)
    assert service.request_ids == []


def test_every_chunk_carries_the_method_coefficients_and_limits():
    service = FakeService()
    batch = [{**r, "completion_tokens": 5} for r in rollouts(3)]
    with client_with(service, replicas=3) as client:
        client.score("rft_fas", batch, coefficients={"res_weight": 0.5}, max_tool_calls=2, request_id="b")
    assert sorted(service.request_ids) == ["b/0-1", "b/1-2", "b/2-3"]
    for request in service.requests:
        assert (request.method, request.coefficients, request.max_tool_calls) == (
            "rft_fas",
            {"res_weight": 0.5},
            2,
        )
        assert request.rollouts[0].completion_tokens == 5


def test_a_service_that_does_not_tell_its_replicas_counts_as_one():
    assert RewardClient("http://127.0.0.1:9", timeout_s=1).replica_count() == 1

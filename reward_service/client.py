"""Clients of the reward service: over HTTP with retries, or in-process on a single machine.

Both expose `run_tool` and `score` with the same signatures and results, so trainers and the rollout server
take either. The HTTP client cuts a batch into chunks of at most `chunk_size` rollouts (optionally into at
least as many chunks as the service has running replicas, which it reads from /readyz) and sends them
concurrently, so that Serve spreads them over the replicas. A chunk's request id names the batch and the
chunk's rollout range and is fixed, with the chunk's bytes, before the first attempt; every retry resends
exactly those. The answer is assembled chunk by chunk and checked to hold each id exactly once, in order.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydantic_core
import requests
from PIL import Image

from reward_service.api import (
    MAX_REQUEST_ID,
    TOKEN_ENV,
    Encoding,
    Rollout,
    ScoredRollout,
    ScoreRequest,
    ScoreResponse,
    ToolRequest,
    ToolResponse,
    encode_image,
)
from reward_service.core import execute_tool, score_batch
from rft.auth import bearer_header, resolve_token
from rft.codec import decode_image, encode_png
from rft.methods import MethodName
from rft.tools.images import as_rgb_array

RETRY_STATUS = {500, 502, 503, 504}
# How long the client trusts the replica count it read from /readyz: autoscaling changes it in minutes.
REPLICA_COUNT_TTL_S = 30.0


class RewardServiceError(RuntimeError):
    """The service refused a request (a 4xx, with its reason) or stayed unreachable after every retry."""


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    image: np.ndarray | None
    error: str | None
    error_type: str | None


@dataclass(frozen=True)
class Chunk:
    """One HTTP request of a batch: its id, the rollout ids it carries (in order) and its exact body."""

    request_id: str
    ids: list[Any]
    body: bytes


def service_session() -> requests.Session:
    """A session for the service: it ignores proxy settings in the environment, which the service (on the
    cluster's network) does not sit behind and which `requests` would otherwise re-read from os.environ on
    every request (about 1 ms per request here under load)."""
    session = requests.Session()
    session.trust_env = False
    return session


def _tool_request(
    name: str, image: Image.Image | np.ndarray, arguments: Any, output_size: int, encoding: Encoding
) -> ToolRequest:
    if encoding == "raw":
        # Through the tools' own image check (a ToolInputError here), so what is sent is what a tool sees.
        image_field = encode_image(as_rgb_array(image, name), "raw")
    else:
        image_field = {"image_png": encode_png(image)}
    return ToolRequest(name=name, arguments=arguments, output_size=output_size, **image_field)


def _tool_result(response: ToolResponse) -> ToolResult:
    image = None
    if response.ok and response.image_raw is not None:
        image = response.image_raw.pixels
    elif response.ok and response.image_png:
        image = decode_image(response.image_png)
    return ToolResult(response.ok, image, response.error, response.error_type)


def _score_request(
    method: MethodName,
    rollouts: Iterable[Rollout | Mapping[str, Any]],
    coefficients: Mapping[str, Any] | None,
    max_tool_calls: int,
    request_id: str | None,
) -> ScoreRequest:
    return ScoreRequest(
        request_id=request_id or uuid.uuid4().hex,
        method=method,
        rollouts=[r if isinstance(r, Rollout) else Rollout.model_validate(r) for r in rollouts],
        coefficients=dict(coefficients or {}),
        max_tool_calls=max_tool_calls,
    )


def _check_exactly_once(sent_ids: Sequence[Any], response: ScoreResponse) -> list[ScoredRollout]:
    got = [s.id for s in response.scores]
    if got != list(sent_ids):
        raise RewardServiceError(
            f"service returned ids {got[:5]}... for {list(sent_ids)[:5]}...; expected each id once"
        )
    return response.scores


def chunk_bounds(count: int, chunk_size: int, min_chunks: int) -> list[tuple[int, int]]:
    """[first, end) ranges that cut `count` rollouts into chunks of at most `chunk_size`, at least
    `min_chunks` of them where there are that many rollouts, with sizes that differ by at most one."""
    chunks = min(max(min_chunks, -(-count // chunk_size)), count) or 1
    return [(i * count // chunks, (i + 1) * count // chunks) for i in range(chunks)]


def _wire_rollouts(rollouts: Iterable[Rollout | Mapping[str, Any]]) -> list[Rollout | dict[str, Any]]:
    """The rollouts as JSON-ready objects. They are validated once, by the service, as the in-process mode
    validates them once: checking them here too would only add the client's time to every batch."""
    wire = [r if isinstance(r, Rollout | dict) else dict(r) for r in rollouts]
    # Each chunk's ids are checked by the replica that scores it; only the client sees the whole batch.
    ids = [_rollout_id(r) for r in wire]
    if len({repr(i) for i in ids}) != len(ids):  # repr: an unhashable id must reach the service's 422
        raise ValueError("rollout ids must be unique within a request")
    return wire


def _rollout_id(rollout: Rollout | dict[str, Any]) -> Any:
    return rollout.id if isinstance(rollout, Rollout) else rollout.get("id")


class InProcessRewards:
    """The service's computations called directly (no Ray, no HTTP), for a single machine and for tests."""

    def __init__(self, image_encoding: Encoding = "raw") -> None:
        self.image_encoding = image_encoding

    def run_tool(
        self, name: str, image: Image.Image | np.ndarray, arguments: Any, output_size: int = 224
    ) -> ToolResult:
        request = _tool_request(name, image, arguments, output_size, self.image_encoding)
        return _tool_result(execute_tool(request))

    def score(
        self,
        method: MethodName,
        rollouts: Iterable[Rollout | Mapping[str, Any]],
        coefficients: Mapping[str, Any] | None = None,
        max_tool_calls: int = 3,
        request_id: str | None = None,
    ) -> list[ScoredRollout]:
        request = _score_request(method, rollouts, coefficients, max_tool_calls, request_id)
        return _check_exactly_once([r.id for r in request.rollouts], score_batch(request))


class RewardClient:
    """HTTP client of a running reward service, with retries that are safe by construction.

    `chunk_size` bounds the rollouts of one request. `spread_over_replicas` also cuts a batch into at least
    one chunk per running replica, so that they score parts of it in parallel: worth it only where a chunk
    takes much longer to score than a request takes to travel, which is not the case for 64 episodes on a
    2-core machine (docs/PERFORMANCE.md), hence off by default. `max_in_flight` is the number of threads
    (kept, with their keep-alive connections, for the client's lifetime) that send a batch's chunks besides
    the calling thread. `token` (else $RFT_REWARD_TOKEN) goes with every request, for a service started with
    one."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8100",
        *,
        token: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 5,
        backoff_s: float = 0.2,
        chunk_size: int = 64,
        max_in_flight: int = 4,
        spread_over_replicas: bool = False,
        image_encoding: Encoding = "raw",
    ) -> None:
        if chunk_size < 1 or max_in_flight < 1:
            raise ValueError("chunk_size and max_in_flight must be >= 1")
        self.base_url = base_url.rstrip("/")
        self._headers = {"Content-Type": "application/json", **bearer_header(resolve_token(token, TOKEN_ENV))}
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.chunk_size = chunk_size
        self.max_in_flight = max_in_flight
        self.spread_over_replicas = spread_over_replicas
        self.image_encoding = image_encoding
        self.retried = 0  # attempts repeated after a connection error or a 5xx, for logs and tests
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._replicas = 1
        self._replicas_read_at = float("-inf")

    def __enter__(self) -> RewardClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the chunk-sending threads (a later batch starts new ones)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    @property
    def session(self) -> requests.Session:
        # requests.Session is not thread-safe; one per thread, kept so its connection is reused.
        if not hasattr(self._local, "session"):
            self._local.session = service_session()
        return self._local.session

    def _post(self, path: str, body: bytes | str) -> bytes:
        last_problem = "no attempt made"
        for attempt in range(self.retries + 1):
            try:
                reply = self.session.post(
                    self.base_url + path,
                    data=body,
                    headers=self._headers,
                    timeout=self.timeout_s,
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                last_problem = f"{type(error).__name__}: {str(error)[:200]}"
            else:
                if reply.status_code == 200:
                    return reply.content
                if reply.status_code not in RETRY_STATUS:
                    raise RewardServiceError(
                        f"{path} refused the request ({reply.status_code}): {reply.text[:500]}"
                    )
                last_problem = f"HTTP {reply.status_code}: {reply.text[:200]}"
            if attempt < self.retries:
                self.retried += 1
                time.sleep(self.backoff_s * 2**attempt)
        raise RewardServiceError(
            f"{self.base_url}{path} failed after {self.retries + 1} attempts: {last_problem}"
        )

    def health(self) -> bool:
        try:
            return (
                self.session.get(self.base_url + "/healthz", headers=self._headers, timeout=5).status_code
                == 200
            )
        except requests.RequestException:
            return False

    def replica_count(self) -> int:
        """Running replicas as /readyz last said (re-read every REPLICA_COUNT_TTL_S); 1 if it cannot say."""
        now = time.monotonic()
        if now - self._replicas_read_at > REPLICA_COUNT_TTL_S:
            self._replicas, self._replicas_read_at = self._read_replica_count(), now
        return self._replicas

    def _read_replica_count(self) -> int:
        try:
            reply = self.session.get(
                self.base_url + "/readyz", headers=self._headers, timeout=min(self.timeout_s, 10.0)
            )
            return max(1, int(reply.json()["replicas"]))
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return 1  # a service that does not say, or a hiccup: one chunk per chunk_size rollouts

    def run_tool(
        self, name: str, image: Image.Image | np.ndarray, arguments: Any, output_size: int = 224
    ) -> ToolResult:
        request = _tool_request(name, image, arguments, output_size, self.image_encoding)
        reply = self._post("/v1/tools", request.model_dump_json())
        return _tool_result(ToolResponse.model_validate_json(reply))

    def score(
        self,
        method: MethodName,
        rollouts: Iterable[Rollout | Mapping[str, Any]],
        coefficients: Mapping[str, Any] | None = None,
        max_tool_calls: int = 3,
        request_id: str | None = None,
    ) -> list[ScoredRollout]:
        request_id = request_id or uuid.uuid4().hex
        if len(request_id) > MAX_REQUEST_ID:
            raise ValueError(f"request_id is longer than {MAX_REQUEST_ID} characters")
        wire = _wire_rollouts(rollouts)
        min_chunks = self.replica_count() if self.spread_over_replicas else 1
        fields = {
            "method": method,
            "coefficients": dict(coefficients or {}),
            "max_tool_calls": max_tool_calls,
        }
        chunks = [
            _chunk(f"{request_id}/{first}-{end}", wire[first:end], fields)
            for first, end in chunk_bounds(len(wire), self.chunk_size, min_chunks)
        ]
        # Each chunk is checked to hold its own ids once and in order; the chunks partition the request in
        # order, so their concatenation holds every id of the request once, in order.
        return [scored for answer in self._send_chunks(chunks) for scored in answer]

    def _send_chunks(self, chunks: list[Chunk]) -> list[list[ScoredRollout]]:
        if len(chunks) == 1:
            return [self._score_chunk(chunks[0])]
        pool = self._executor()
        futures = [pool.submit(self._score_chunk, chunk) for chunk in chunks[1:]]
        try:
            # The calling thread sends one chunk itself: one hand-off less.
            first = self._score_chunk(chunks[0])
            return [first, *(future.result() for future in futures)]
        finally:
            for future in futures:  # after a failure, chunks not sent yet are dropped
                future.cancel()

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    self.max_in_flight, thread_name_prefix="reward-client"
                )
            return self._pool

    def _score_chunk(self, chunk: Chunk) -> list[ScoredRollout]:
        answer = ScoreResponse.model_validate_json(self._post("/v1/score", chunk.body))
        return _check_exactly_once(chunk.ids, answer)


def _chunk(request_id: str, rollouts: list[Rollout | dict[str, Any]], fields: dict[str, Any]) -> Chunk:
    body = pydantic_core.to_json({"request_id": request_id, "rollouts": rollouts, **fields})
    return Chunk(request_id, [_rollout_id(r) for r in rollouts], body)


def connect(url: str | None, *, token_env: str = TOKEN_ENV) -> RewardClient | InProcessRewards:
    """`None` or 'inprocess' gives the in-process mode; anything else is the service's base URL, called with
    the token in `token_env` (else in $RFT_REWARD_TOKEN)."""
    if url in (None, "", "inprocess"):
        return InProcessRewards()
    return RewardClient(url, token=os.environ.get(token_env))

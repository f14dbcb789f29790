"""Clients of the reward service: over HTTP with retries, or in-process on a single machine.

Both expose `run_tool` and `score` with the same signatures and results, so trainers and the rollout server
take either. The HTTP client splits a large batch into chunks sent concurrently (Serve spreads them over the
replicas); each chunk's request id is fixed before the first attempt and reused on every retry, and the
answer is assembled by rollout id and checked to hold each id exactly once.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests
from PIL import Image

from reward_service.api import (
    Method,
    Rollout,
    ScoredRollout,
    ScoreRequest,
    ScoreResponse,
    ToolRequest,
    ToolResponse,
    decode_image,
    encode_png,
)
from reward_service.core import execute_tool, score_batch

RETRY_STATUS = {500, 502, 503, 504}


class RewardServiceError(RuntimeError):
    """The service refused a request (a 4xx, with its reason) or stayed unreachable after every retry."""


@dataclass(frozen=True)
class ToolResult:
    ok: bool
    image: np.ndarray | None
    error: str | None
    error_type: str | None


def _tool_result(response: ToolResponse) -> ToolResult:
    image = decode_image(response.image_png) if response.ok and response.image_png else None
    return ToolResult(response.ok, image, response.error, response.error_type)


def _score_request(
    method: Method,
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


def _check_exactly_once(request: ScoreRequest, response: ScoreResponse) -> list[ScoredRollout]:
    sent = [r.id for r in request.rollouts]
    got = [s.id for s in response.scores]
    if got != sent:
        raise RewardServiceError(
            f"service returned ids {got[:5]}... for {sent[:5]}...; expected each id once"
        )
    return response.scores


class InProcessRewards:
    """The service's computations called directly (no Ray, no HTTP), for a single machine and for tests."""

    def run_tool(
        self, name: str, image: Image.Image | np.ndarray, arguments: Any, output_size: int = 224
    ) -> ToolResult:
        request = ToolRequest(
            name=name, arguments=arguments, image_png=encode_png(image), output_size=output_size
        )
        return _tool_result(execute_tool(request))

    def score(
        self,
        method: Method,
        rollouts: Iterable[Rollout | Mapping[str, Any]],
        coefficients: Mapping[str, Any] | None = None,
        max_tool_calls: int = 3,
        request_id: str | None = None,
    ) -> list[ScoredRollout]:
        request = _score_request(method, rollouts, coefficients, max_tool_calls, request_id)
        return _check_exactly_once(request, score_batch(request))


class RewardClient:
    """HTTP client of a running reward service, with retries that are safe by construction."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8100",
        *,
        timeout_s: float = 60.0,
        retries: int = 5,
        backoff_s: float = 0.2,
        chunk_size: int = 64,
        max_in_flight: int = 4,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.chunk_size = chunk_size
        self.max_in_flight = max_in_flight
        self.retried = 0  # attempts repeated after a connection error or a 5xx, for logs and tests
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        # requests.Session is not thread-safe; one per thread that sends chunks.
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _post(self, path: str, body: str) -> bytes:
        last_problem = "no attempt made"
        for attempt in range(self.retries + 1):
            try:
                reply = self.session.post(
                    self.base_url + path,
                    data=body,
                    headers={"Content-Type": "application/json"},
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
            return self.session.get(self.base_url + "/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def run_tool(
        self, name: str, image: Image.Image | np.ndarray, arguments: Any, output_size: int = 224
    ) -> ToolResult:
        request = ToolRequest(
            name=name, arguments=arguments, image_png=encode_png(image), output_size=output_size
        )
        return _tool_result(
            ToolResponse.model_validate_json(self._post("/v1/tools", request.model_dump_json()))
        )

    def score(
        self,
        method: Method,
        rollouts: Iterable[Rollout | Mapping[str, Any]],
        coefficients: Mapping[str, Any] | None = None,
        max_tool_calls: int = 3,
        request_id: str | None = None,
    ) -> list[ScoredRollout]:
        request = _score_request(method, rollouts, coefficients, max_tool_calls, request_id)
        chunks = [
            request.rollouts[i : i + self.chunk_size]
            for i in range(0, len(request.rollouts), self.chunk_size)
        ]
        parts = [
            request.model_copy(update={"request_id": f"{request.request_id}/{index}", "rollouts": chunk})
            for index, chunk in enumerate(chunks)
        ]
        if len(parts) == 1:
            answers = [self._score_part(parts[0])]
        else:
            with concurrent.futures.ThreadPoolExecutor(min(self.max_in_flight, len(parts))) as pool:
                answers = list(pool.map(self._score_part, parts))
        # Each chunk is checked to hold its own ids once and in order; the chunks partition the request in
        # order, so their concatenation holds every id of the request once, in order.
        return [
            scored
            for part, answer in zip(parts, answers, strict=True)
            for scored in _check_exactly_once(part, answer)
        ]

    def _score_part(self, part: ScoreRequest) -> ScoreResponse:
        return ScoreResponse.model_validate_json(self._post("/v1/score", part.model_dump_json()))


def connect(url: str | None) -> RewardClient | InProcessRewards:
    """`None` or 'inprocess' gives the in-process mode; anything else is the service's base URL."""
    return InProcessRewards() if url in (None, "", "inprocess") else RewardClient(url)

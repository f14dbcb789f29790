"""The Ray Serve application: one HTTP ingress in front of two worker deployments.

    client --HTTP--> Ingress (FastAPI, 1 replica: idempotency, timeouts, retries, /metrics)
                        |-- ToolWorker x N  (request batching of tool calls; rft.tools)
                        '-- Scorer x N      (rollout batches split in chunks; rft.rewards)

A score request is split into chunks that run on the Scorer replicas in parallel. A chunk whose replica dies
is sent again (to a live replica); the answer is assembled by rollout id and checked to hold every id exactly
once. Results are kept by `request_id`, and a request that arrives again while the first copy is still
running waits for it, so retries never score twice and never lose a score.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ray
from fastapi import FastAPI, HTTPException, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from ray import serve

from reward_service.api import Rollout, ScoredRollout, ScoreRequest, ScoreResponse, ToolRequest, ToolResponse
from reward_service.core import coefficients_for, execute_tool, score_rollouts

APP_NAME = "reward_service"
REPLICA_DIED = (ray.exceptions.RayActorError,)
CHUNK_ATTEMPTS = 6


@dataclass(frozen=True)
class ServiceSettings:
    """Everything `build_app` needs; mirrors the `reward_service` config section."""

    replicas: int = 2
    max_replicas: int | None = None
    replica_cpus: float = 0.25
    request_timeout_s: float = 60.0
    max_batch_size: int = 16
    batch_wait_ms: float = 5.0
    chunk_size: int = 16
    result_cache_size: int = 4096


def _scaling(settings: ServiceSettings) -> dict[str, Any]:
    if settings.max_replicas and settings.max_replicas > settings.replicas:
        return {
            "autoscaling_config": {
                "min_replicas": settings.replicas,
                "max_replicas": settings.max_replicas,
                "target_ongoing_requests": 2,
            }
        }
    return {"num_replicas": settings.replicas}


@serve.deployment
class ToolWorker:
    """Executes tool calls; concurrent calls are gathered into one batch (Ray Serve request batching)."""

    def __init__(self, max_batch_size: int, batch_wait_ms: float) -> None:
        self.run.set_max_batch_size(max_batch_size)
        self.run.set_batch_wait_timeout_s(batch_wait_ms / 1000)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
    async def run(self, requests: list[ToolRequest]) -> list[ToolResponse]:
        return [execute_tool(request) for request in requests]


@serve.deployment
class Scorer:
    """Scores one chunk of a request's rollouts."""

    def score(self, request: ScoreRequest, rollouts: list[Rollout]) -> list[ScoredRollout]:
        return score_rollouts(request, rollouts)


api = FastAPI(
    title="reward_service", description="Visual tool execution and rollout scoring (docs/REWARD_SERVICE.md)"
)


class Metrics:
    """Prometheus series of the ingress (its own registry, so a restarted replica re-registers cleanly)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "reward_service_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "reward_service_request_seconds", "Request latency", ["endpoint"], registry=self.registry
        )
        self.tool_calls = Counter(
            "reward_service_tool_calls",
            "Tool calls by tool and outcome",
            ["tool", "ok"],
            registry=self.registry,
        )
        self.scored = Counter("reward_service_rollouts_scored", "Rollouts scored", registry=self.registry)
        self.chunks = Counter(
            "reward_service_chunks_scored", "Scoring chunks finished", registry=self.registry
        )
        self.retries = Counter(
            "reward_service_chunk_retries", "Chunks re-sent after a replica died", registry=self.registry
        )
        self.cache_hits = Counter(
            "reward_service_idempotent_hits",
            "Requests answered from the result cache",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "reward_service_requests_in_flight", "Requests in flight", registry=self.registry
        )


@contextlib.contextmanager
def observe(metrics: Metrics, endpoint: str) -> Iterator[None]:
    """Count the request by endpoint and outcome, and time it."""
    start, status = time.perf_counter(), "ok"
    metrics.in_flight.inc()
    try:
        yield
    except HTTPException as error:
        status = str(error.status_code)
        raise
    except Exception:
        status = "error"
        raise
    finally:
        metrics.in_flight.dec()
        metrics.requests.labels(endpoint=endpoint, status=status).inc()
        metrics.latency.labels(endpoint=endpoint).observe(time.perf_counter() - start)


def _fingerprint(request: ScoreRequest) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


@serve.deployment(num_replicas=1)
@serve.ingress(api)
class Ingress:
    def __init__(self, tool_worker: Any, scorer: Any, settings: ServiceSettings) -> None:
        self.tools = tool_worker
        self.scorer = scorer
        self.settings = settings
        self.metrics = Metrics()
        self.results: collections.OrderedDict[str, tuple[str, ScoreResponse]] = collections.OrderedDict()
        self.running: dict[str, tuple[str, asyncio.Task[ScoreResponse]]] = {}

    @api.get("/healthz")
    def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz(self) -> dict[str, str]:
        probe = ScoreRequest(
            request_id="readyz", method="st_grpo", rollouts=[Rollout(id="r", label="live", turns=["<Real>"])]
        )
        await asyncio.wait_for(self.scorer.score.remote(probe, probe.rollouts), timeout=10)
        return {"status": "ready"}

    @api.get("/metrics")
    def metrics_endpoint(self) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @api.post("/v1/tools", response_model=ToolResponse)
    async def run_tool(self, request: ToolRequest) -> ToolResponse:
        with observe(self.metrics, "tools"):
            response = await self._with_timeout(self.tools.run.remote(request))
        self.metrics.tool_calls.labels(tool=request.name[:32], ok=str(response.ok)).inc()
        return response

    @api.post("/v1/score", response_model=ScoreResponse)
    async def score(self, request: ScoreRequest) -> ScoreResponse:
        with observe(self.metrics, "score"):
            try:
                coefficients_for(request.method, request.coefficients)
            except (TypeError, ValueError) as error:
                raise HTTPException(status_code=422, detail=str(error)) from None
            return await self._with_timeout(asyncio.shield(self._score_once(request)))

    async def _score_once(self, request: ScoreRequest) -> ScoreResponse:
        """Idempotency by request id: a finished request is answered from the cache, a running one is awaited."""
        fingerprint = _fingerprint(request)
        if request.request_id in self.results:
            seen, response = self.results[request.request_id]
            self._check_same(request.request_id, seen, fingerprint)
            self.metrics.cache_hits.inc()
            return response
        if request.request_id in self.running:
            seen, task = self.running[request.request_id]
            self._check_same(request.request_id, seen, fingerprint)
            self.metrics.cache_hits.inc()
            return await task
        task = asyncio.ensure_future(self._score_chunks(request))
        self.running[request.request_id] = (fingerprint, task)
        try:
            response = await task
        finally:
            self.running.pop(request.request_id, None)
        self._remember(request.request_id, fingerprint, response)
        return response

    @staticmethod
    def _check_same(request_id: str, seen: str, fingerprint: str) -> None:
        if seen != fingerprint:
            raise HTTPException(
                status_code=409, detail=f"request_id {request_id!r} was already used for a different batch"
            )

    def _remember(self, request_id: str, fingerprint: str, response: ScoreResponse) -> None:
        self.results[request_id] = (fingerprint, response)
        while len(self.results) > self.settings.result_cache_size:
            self.results.popitem(last=False)

    async def _score_chunks(self, request: ScoreRequest) -> ScoreResponse:
        size = self.settings.chunk_size
        chunks = [request.rollouts[i : i + size] for i in range(0, len(request.rollouts), size)]
        parts = await asyncio.gather(*(self._score_chunk(request, chunk) for chunk in chunks))
        by_id = {scored.id: scored for part in parts for scored in part}
        scores = [by_id[rollout.id] for rollout in request.rollouts]
        if len(by_id) != len(request.rollouts) or sum(len(p) for p in parts) != len(request.rollouts):
            raise HTTPException(status_code=500, detail="internal error: a chunk returned a wrong set of ids")
        self.metrics.scored.inc(len(scores))
        return ScoreResponse(request_id=request.request_id, method=request.method, scores=scores)

    async def _score_chunk(self, request: ScoreRequest, chunk: list[Rollout]) -> list[ScoredRollout]:
        # Only the chunk's rollouts travel to the replica.
        light = request.model_copy(update={"rollouts": chunk})
        for attempt in range(CHUNK_ATTEMPTS):
            try:
                scored = await self.scorer.score.remote(light, chunk)
            except REPLICA_DIED:
                self.metrics.retries.inc()
                await asyncio.sleep(0.05 * 2**attempt)
                continue
            self.metrics.chunks.inc()
            return scored
        raise HTTPException(status_code=503, detail=f"no live Scorer replica after {CHUNK_ATTEMPTS} attempts")

    async def _with_timeout(self, awaitable: Any) -> Any:
        try:
            return await asyncio.wait_for(awaitable, timeout=self.settings.request_timeout_s)
        except TimeoutError:
            raise HTTPException(
                status_code=504, detail=f"request took longer than {self.settings.request_timeout_s} s"
            ) from None


INGRESS_CPUS = 0.1


def cpus_needed(settings: ServiceSettings) -> float:
    """Logical CPUs the application reserves at its minimum size (two worker deployments + the ingress)."""
    return 2 * settings.replicas * settings.replica_cpus + INGRESS_CPUS


def build_app(settings: ServiceSettings) -> serve.Application:
    replica = {"ray_actor_options": {"num_cpus": settings.replica_cpus}, **_scaling(settings)}
    tool_worker = ToolWorker.options(**replica).bind(settings.max_batch_size, settings.batch_wait_ms)
    scorer = Scorer.options(**replica).bind()
    return Ingress.options(ray_actor_options={"num_cpus": INGRESS_CPUS}).bind(tool_worker, scorer, settings)


def start(
    settings: ServiceSettings, *, host: str = "127.0.0.1", port: int = 8100, num_cpus: int | None = None
) -> str:
    """Start Ray (locally unless RAY_ADDRESS names a cluster) and the application; return its base URL."""
    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, namespace=APP_NAME)
    available = ray.cluster_resources().get("CPU", 0.0)
    if cpus_needed(settings) > available:
        # Serve would otherwise wait forever for replicas that can never be scheduled.
        raise ValueError(
            f"{settings.replicas} replicas x 2 deployments x {settings.replica_cpus} CPU (+{INGRESS_CPUS} for "
            f"the ingress) need {cpus_needed(settings):.2f} CPUs but Ray has {available:g}; "
            "lower --replica-cpus or --replicas"
        )
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}"


def stop() -> None:
    serve.shutdown()
    ray.shutdown()

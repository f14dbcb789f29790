"""The Ray Serve application: N replicas of one HTTP deployment behind Serve's proxy.

    client --HTTP--> Serve proxy --> RewardServer replica 1..N (FastAPI; tools + scoring in-process)
                                          '--> MetricsHub (one actor: every replica's counters, /metrics)

Each request is answered by the replica that receives it, so the service adds one HTTP round trip and
nothing else to the in-process computation. A large scoring batch is split by the client into chunks that
Serve spreads over the replicas. Concurrent tool calls on a replica are gathered into one batch (Ray Serve
request batching). Replicas keep results by request id and await a running duplicate; scoring is pure, so a
retry that lands on another replica recomputes the same scores: nothing is lost or counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import ray
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import ValidationError
from ray import serve

from reward_service.api import ScoreRequest, ScoreResponse, ToolRequest, ToolResponse
from reward_service.core import coefficients_for, execute_tool, score_batch
from reward_service.idempotency import IdempotentResults, RequestIdReused

APP_NAME = "reward_service"
HUB_NAME = "reward_service_metrics"
FLUSH_S = 0.2
MAX_ECHO_BYTES = 1 << 20


@dataclass(frozen=True)
class ServiceSettings:
    """Everything `build_app` needs; mirrors `python -m reward_service --help`."""

    replicas: int = 2
    max_replicas: int | None = None
    replica_cpus: float = 0.5
    request_timeout_s: float = 60.0
    max_batch_size: int = 16
    batch_wait_ms: float = 2.0
    result_cache_size: int = 4096


@ray.remote(num_cpus=0)
class MetricsHub:
    """Prometheus series of the whole service; replicas report to it without waiting for an answer."""

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
        self.tool_seconds = Histogram(
            "reward_service_tool_seconds", "Tool execution time", ["tool"], registry=self.registry
        )
        self.scored = Counter("reward_service_rollouts_scored", "Rollouts scored", registry=self.registry)
        self.cache_hits = Counter(
            "reward_service_idempotent_hits", "Requests answered by an earlier copy", registry=self.registry
        )

    def record(self, events: list[tuple]) -> None:
        """Apply a replica's buffered events: ("request", endpoint, status, s), ("tool", name, ok, s), ..."""
        for kind, *fields in events:
            getattr(self, kind)(*fields)

    def request(self, endpoint: str, status: str, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, status=status).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def tool(self, name: str, ok: bool, seconds: float) -> None:
        self.tool_calls.labels(tool=name, ok=str(ok)).inc()
        self.tool_seconds.labels(tool=name).observe(seconds)

    def scored_rollouts(self, count: int) -> None:
        self.scored.inc(count)

    def cache_hit(self) -> None:
        self.cache_hits.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


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


api = FastAPI(
    title="reward_service", description="Visual tool execution and rollout scoring (docs/REWARD_SERVICE.md)"
)


@serve.deployment
@serve.ingress(api)
class RewardServer:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.hub = MetricsHub.options(
            name=HUB_NAME, namespace=APP_NAME, get_if_exists=True, lifetime="detached"
        ).remote()
        self.events: list[tuple] = []
        self.flusher: asyncio.Task | None = None
        self.results = IdempotentResults(settings.result_cache_size)
        self._run_batch.set_max_batch_size(settings.max_batch_size)
        self._run_batch.set_batch_wait_timeout_s(settings.batch_wait_ms / 1000)

    def report(self, *event: Any) -> None:
        """Buffer a metrics event; a background task sends the buffer to the hub every FLUSH_S seconds, so a
        request pays for a list append instead of an actor call."""
        self.events.append(event)
        if self.flusher is None:
            self.flusher = asyncio.ensure_future(self._flush_forever())

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            if self.events:
                events, self.events = self.events, []
                self.hub.record.remote(events)

    @api.get("/healthz")
    def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz")
    async def readyz(self) -> dict[str, str]:
        await asyncio.wait_for(self.hub.exposition.remote(), timeout=10)
        return {"status": "ready"}

    @api.post("/v1/echo")
    async def echo(self, http_request: Request, reply_bytes: int = 0) -> Response:
        """Reads the body and answers `reply_bytes` bytes, doing nothing else: the transport cost of a
        request and an answer of those sizes (the baseline of the service's overhead)."""
        size = len(await http_request.body())
        padding = "x" * min(max(reply_bytes, 0), MAX_ECHO_BYTES)
        return Response(json.dumps({"bytes": size, "padding": padding}), media_type="application/json")

    @api.get("/metrics")
    async def metrics(self) -> Response:
        return Response(await self.hub.exposition.remote(), media_type=CONTENT_TYPE_LATEST)

    @api.post("/v1/tools", response_model=ToolResponse)
    async def run_tool(self, request: ToolRequest) -> ToolResponse:
        start = time.perf_counter()
        response = await self._bounded(self._run_batch(request), "tools", start)
        self.report("tool", request.name[:32], response.ok, response.seconds)
        self.report("request", "tools", "ok", time.perf_counter() - start)
        return response

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
    async def _run_batch(self, requests: list[ToolRequest]) -> list[ToolResponse]:
        # One thread hop for the whole batch keeps the event loop free for health checks meanwhile.
        return await asyncio.to_thread(lambda: [execute_tool(request) for request in requests])

    @api.post("/v1/score", response_model=ScoreResponse)
    async def score(self, http_request: Request) -> Response:
        # Parsed and answered with pydantic-core's JSON directly: FastAPI's generic body parsing and
        # response re-validation cost more than the scoring of a small batch.
        start = time.perf_counter()
        try:
            request = ScoreRequest.model_validate_json(await http_request.body())
            coefficients_for(request.method, request.coefficients)
        except ValidationError as error:
            # error.json() renders every error's context (exceptions included) as plain JSON.
            return self._refuse(start, 422, json.loads(error.json(include_url=False, include_input=False)))
        except (TypeError, ValueError) as error:
            return self._refuse(start, 422, str(error))
        response = await self._bounded(asyncio.shield(self._score_once(request)), "score", start)
        self.report("request", "score", "ok", time.perf_counter() - start)
        return Response(response.model_dump_json(), media_type="application/json")

    def _refuse(self, start: float, status: int, detail: Any) -> Response:
        self.report("request", "score", str(status), time.perf_counter() - start)
        return JSONResponse({"detail": detail}, status_code=status)

    async def _score_once(self, request: ScoreRequest) -> ScoreResponse:
        hits = self.results.hits
        try:
            response = await self.results.get_or_compute(request, self._compute)
        except RequestIdReused as error:
            raise HTTPException(status_code=409, detail=str(error)) from None
        if self.results.hits > hits:
            self.report("cache_hit")
        return response

    async def _compute(self, request: ScoreRequest) -> ScoreResponse:
        # Scoring a chunk takes milliseconds and holds the GIL anyway: a thread hop would only add latency.
        response = score_batch(request)
        self.report("scored_rollouts", len(response.scores))
        return response

    async def _bounded(self, awaitable: Any, endpoint: str, start: float) -> Any:
        try:
            return await asyncio.wait_for(awaitable, timeout=self.settings.request_timeout_s)
        except TimeoutError:
            self.report("request", endpoint, "504", time.perf_counter() - start)
            raise HTTPException(
                status_code=504, detail=f"request took longer than {self.settings.request_timeout_s} s"
            ) from None


def cpus_needed(settings: ServiceSettings) -> float:
    """Logical CPUs the application reserves at its minimum size."""
    return settings.replicas * settings.replica_cpus


def build_app(settings: ServiceSettings) -> serve.Application:
    options = {"ray_actor_options": {"num_cpus": settings.replica_cpus}, **_scaling(settings)}
    return RewardServer.options(**options).bind(settings)


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
            f"{settings.replicas} replicas x {settings.replica_cpus} CPU need {cpus_needed(settings):.2f} CPUs "
            f"but Ray has {available:g}; lower --replica-cpus or --replicas"
        )
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}"


def stop() -> None:
    serve.shutdown()
    with contextlib.suppress(ValueError):  # never started, or already gone
        ray.kill(ray.get_actor(HUB_NAME, namespace=APP_NAME))
    ray.shutdown()

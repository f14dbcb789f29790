"""The Ray Serve application: N replicas of one HTTP deployment behind Serve's proxy.

    client --HTTP--> Serve proxy --> RewardServer replica 1..N (FastAPI; tools + scoring in-process)
                                          '--> MetricsHub (one actor: every replica's counters, /metrics)

Each request is answered by the replica that receives it, so the service adds one HTTP round trip and
nothing else to the in-process computation. A large scoring batch is split by the client into chunks that
Serve spreads over the replicas. Concurrent tool calls on a replica are gathered into one batch (Ray Serve
request batching). Replicas keep answers by request id and score synchronously, so a duplicate that reaches
the same replica finds the answer; scoring is pure, so a retry that lands on another replica recomputes the
same scores: nothing is lost or counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
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
from reward_service.idempotency import IdempotentResults, RequestIdReused, fingerprint

APP_NAME = "reward_service"
HUB_NAME = "reward_service_metrics"
FLUSH_S = 0.2
MAX_ECHO_BYTES = 1 << 20
DIRECT_CALL_BYTES = 1 << 20
# Serve runs a replica's request handlers on the replica's own event loop instead of a second thread's: one
# thread hop less per request, and a scoring chunk no longer shares the GIL with that loop's thread. Paired
# measurements took ~0.9 ms off a 64-episode batch (docs/PERFORMANCE.md). Safe here because the handlers
# never block for long: tools run in a worker thread, and a chunk scores in milliseconds.
REPLICA_ENV = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}


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


# Defined before the deployment: `serve.ingress` pickles the routes with the module globals seen so far.
def json_response(body: str | bytes) -> Response:
    return Response(body, media_type="application/json")


def validation_details(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as plain JSON (exceptions in their context rendered as text), without the input:
    each has a `type` (e.g. `raw_image_size`) a client can act on."""
    return json.loads(error.json(include_url=False, include_input=False))


def running_replicas(app_name: str, deployment: str) -> int:
    """RUNNING replicas of a deployment, from Serve's controller (a blocking call); at least 1, the one
    asking."""
    status = serve.status().applications[app_name].deployments[deployment]
    return max(1, status.replica_states.get("RUNNING", 0))


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
        self.results: IdempotentResults[bytes] = IdempotentResults(settings.result_cache_size)
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
    async def readyz(self) -> dict[str, Any]:
        """Ready once the metrics hub answers; `replicas` (running replicas of this deployment) lets a client
        split one batch into as many chunks, scored in parallel."""
        await asyncio.wait_for(self.hub.exposition.remote(), timeout=10)
        context = serve.get_replica_context()
        replicas = await asyncio.to_thread(running_replicas, context.app_name, context.deployment)
        return {"status": "ready", "replicas": replicas}

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

    # Both POST endpoints parse and answer with pydantic-core's JSON directly: FastAPI's generic body parsing
    # and response re-validation cost more than the scoring of a small batch, and its 422 echoes the input
    # (a whole image) back.

    @api.post("/v1/tools", response_model=ToolResponse)
    async def run_tool(self, http_request: Request) -> Response:
        start = time.perf_counter()
        try:
            request = ToolRequest.model_validate_json(await http_request.body())
        except ValidationError as error:
            return self._refuse("tools", start, 422, validation_details(error))
        response = await self._bounded(self._run_batch(request), "tools", start)
        self.report("tool", request.name[:32], response.ok, response.seconds)
        self.report("request", "tools", "ok", time.perf_counter() - start)
        return json_response(response.model_dump_json())

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
    async def _run_batch(self, requests: list[ToolRequest]) -> list[ToolResponse]:
        # One thread hop for the whole batch keeps the event loop free for health checks meanwhile.
        return await asyncio.to_thread(lambda: [execute_tool(request) for request in requests])

    @api.post("/v1/score", response_model=ScoreResponse)
    async def score(self, http_request: Request) -> Response:
        start = time.perf_counter()
        body = await http_request.body()
        try:
            request = ScoreRequest.model_validate_json(body)
            coefficients_for(request.method, request.coefficients)
        except ValidationError as error:
            return self._refuse("score", start, 422, validation_details(error))
        except (TypeError, ValueError) as error:
            return self._refuse("score", start, 422, str(error))
        hits = self.results.hits
        try:
            # No await from here to the answer: see reward_service/idempotency.py for why that matters.
            answer = self.results.get_or_compute(
                request.request_id, fingerprint(body), lambda: self._score_to_json(request)
            )
        except RequestIdReused as error:
            return self._refuse("score", start, 409, str(error))
        if self.results.hits > hits:
            self.report("cache_hit")
        self.report("request", "score", "ok", time.perf_counter() - start)
        return json_response(answer)

    def _score_to_json(self, request: ScoreRequest) -> bytes:
        # On the event loop, not in a thread: scoring a chunk takes milliseconds and holds the GIL anyway, so
        # a thread hop would only add latency. It is also what keeps the idempotency map race-free.
        response = score_batch(request)
        self.report("scored_rollouts", len(response.scores))
        return response.model_dump_json().encode()

    def _refuse(self, endpoint: str, start: float, status: int, detail: Any) -> Response:
        self.report("request", endpoint, str(status), time.perf_counter() - start)
        return JSONResponse({"detail": detail}, status_code=status)

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
    actor_options = {"num_cpus": settings.replica_cpus, "runtime_env": {"env_vars": REPLICA_ENV}}
    return RewardServer.options(ray_actor_options=actor_options, **_scaling(settings)).bind(settings)


def start(
    settings: ServiceSettings, *, host: str = "127.0.0.1", port: int = 8100, num_cpus: int | None = None
) -> str:
    """Start Ray (locally unless RAY_ADDRESS names a cluster) and the application; return its base URL."""
    if not ray.is_initialized():
        # Serve moves HTTP bodies between its proxy and the replicas as Ray objects; above this size (100 KiB
        # by default) they go through the shared-memory object store, which added ~5-8 ms to a raw 224 px
        # image call (docs/PERFORMANCE.md). Read by the processes of a Ray started here; a cluster sets it
        # in its own environment. A value the caller set wins.
        os.environ.setdefault("RAY_max_direct_call_object_size", str(DIRECT_CALL_BYTES))
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

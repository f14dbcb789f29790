"""The Ray Serve application: N replicas of one HTTP deployment behind Serve's proxy.

    client --HTTP--> Serve proxy --> RewardServer replica 1..N (FastAPI; tools + scoring in-process)
                                          '--> MetricsHub (one actor: every replica's counters, /metrics)

Each request is answered by the replica that receives it, so the service adds one HTTP round trip and
nothing else to the in-process computation. A large scoring batch is split by the client into chunks that
Serve spreads over the replicas. Concurrent tool calls on a replica are gathered into one batch (Ray Serve
request batching). Replicas keep answers by request id and score synchronously, so a duplicate that reaches
the same replica finds the answer; scoring is pure, so a retry that lands on another replica recomputes the
same scores: nothing is lost or counted twice. Every request passes `reward_service.guard` first: the token
(where the service has one), then the body's size; a Ray the service starts keeps every port on loopback
(`reward_service.local_ray`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from ray import serve

from reward_service.api import TOKEN_ENV, ScoreRequest, ScoreResponse, ToolRequest, ToolResponse
from reward_service.core import coefficients_for, execute_tool, score_batch
from reward_service.guard import HttpError, authorize, parse_body, read_body
from reward_service.idempotency import IdempotentResults, RequestIdReused, fingerprint
from reward_service.local_ray import init_loopback_ray, keep_replica_grpc_on_loopback
from rft.auth import check_exposure
from rft.codec import encode_png
from rft.errors import short_repr, short_text
from rft.http_schema import BINARY, describe_request_bodies
from rft.tools import TOOL_NAMES

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
log = logging.getLogger("ray.serve")


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
    result_cache_bytes: int = 64 << 20
    # The largest tool request is a 16 MiB raw image: 21.3 MiB of base64 (docs/REWARD_SERVICE.md).
    max_body_bytes: int = 32 << 20


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


def echo_reply_bytes(text: str) -> int:
    """`reply_bytes` of an echo request, clamped to [0, MAX_ECHO_BYTES]."""
    try:
        return min(max(int(text), 0), MAX_ECHO_BYTES)
    except ValueError:
        raise HttpError(422, f"reply_bytes must be an integer, got {short_repr(text)}") from None


def tool_label(name: str) -> str:
    """The metrics label of a tool call: a client's made-up names must not each add a series."""
    return name if name in TOOL_NAMES else "unknown"


def running_replicas(app_name: str, deployment: str) -> int:
    """RUNNING replicas of a deployment, from Serve's controller (a blocking call); at least 1, the one
    asking."""
    status = serve.status().applications[app_name].deployments[deployment]
    return max(1, status.replica_states.get("RUNNING", 0))


# The API pages are the deployment's own routes below, so that they follow the token rule.
api = FastAPI(
    title="reward_service",
    description="Visual tool execution and rollout scoring (docs/REWARD_SERVICE.md)",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)
_GREY_PNG = encode_png(np.full((32, 32, 3), 128, dtype=np.uint8))
# The POST bodies the routes read themselves, described from the models they parse with (rft.http_schema).
REQUEST_BODIES = {"/v1/tools": ToolRequest, "/v1/score": ScoreRequest, "/v1/echo": BINARY}
REQUEST_EXAMPLES = {
    "/v1/tools": [{"name": "FFTTool", "arguments": {}, "image_png": _GREY_PNG}],
    "/v1/score": [
        {
            "request_id": "example",
            "method": "dt_grpo",
            "rollouts": [{"id": "r0", "label": "live", "turns": ["<Real>", "<answer><Real></answer>"]}],
        }
    ],
}


def _openapi() -> dict[str, Any]:
    if api.openapi_schema is None:
        schema = get_openapi(
            title=api.title, version=api.version, description=api.description, routes=api.routes
        )
        api.openapi_schema = describe_request_bodies(schema, REQUEST_BODIES, REQUEST_EXAMPLES)
    return api.openapi_schema


api.openapi = _openapi  # type: ignore[method-assign]


@serve.deployment
@serve.ingress(api)
class RewardServer:
    def __init__(self, settings: ServiceSettings, token: str | None) -> None:
        keep_replica_grpc_on_loopback()
        self.settings = settings
        self.token = token  # None: anyone who reaches the port may call (start() allows it on loopback only)
        self.hub = MetricsHub.options(
            name=HUB_NAME, namespace=APP_NAME, get_if_exists=True, lifetime="detached"
        ).remote()
        self.events: list[tuple] = []
        self.flusher: asyncio.Task | None = None
        self.results: IdempotentResults[bytes] = IdempotentResults(
            settings.result_cache_size, settings.result_cache_bytes
        )
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
    async def echo(self, http_request: Request, reply_bytes: str = "0") -> Response:
        """Reads the body and answers `reply_bytes` bytes, doing nothing else: the transport cost of a
        request and an answer of those sizes (the baseline of the service's overhead)."""

        async def answer() -> Response:
            size = len(await read_body(http_request, self.settings.max_body_bytes))
            padding = "x" * echo_reply_bytes(reply_bytes)
            return json_response(json.dumps({"bytes": size, "padding": padding}))

        return await self._answer("echo", http_request, answer)

    @api.get("/metrics")
    async def metrics(self, http_request: Request) -> Response:
        async def answer() -> Response:
            return Response(await self.hub.exposition.remote(), media_type=CONTENT_TYPE_LATEST)

        return await self._answer("metrics", http_request, answer)

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi(self, http_request: Request) -> Response:
        async def answer() -> Response:
            return JSONResponse(http_request.app.openapi())

        return await self._answer("openapi", http_request, answer)

    @api.get("/docs", include_in_schema=False)
    async def docs(self, http_request: Request) -> Response:
        return await self._answer("docs", http_request, lambda: self._page(get_swagger_ui_html))

    @api.get("/redoc", include_in_schema=False)
    async def redoc(self, http_request: Request) -> Response:
        return await self._answer("docs", http_request, lambda: self._page(get_redoc_html))

    async def _page(self, render: Callable[..., Response]) -> Response:
        # A browser cannot send the token, and the page would fetch /openapi.json without it: off with one.
        if self.token is not None:
            raise HttpError(404, "the API pages are off on a service with a token; GET /openapi.json with it")
        return render(openapi_url="/openapi.json", title="reward_service")

    # Both POST endpoints parse and answer with pydantic-core's JSON directly: FastAPI's generic body parsing
    # and response re-validation cost more than the scoring of a small batch, and its 422 echoes the input
    # (a whole image) back.

    @api.post("/v1/tools", response_model=ToolResponse)
    async def run_tool(self, http_request: Request) -> Response:
        return await self._answer("tools", http_request, lambda: self._tool_answer(http_request))

    async def _tool_answer(self, http_request: Request) -> Response:
        request = parse_body(ToolRequest, await read_body(http_request, self.settings.max_body_bytes))
        response = await self._bounded(self._run_batch(request))
        self.report("tool", tool_label(request.name), response.ok, response.seconds)
        return json_response(response.model_dump_json())

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
    async def _run_batch(self, requests: list[ToolRequest]) -> list[ToolResponse]:
        # One thread hop for the whole batch keeps the event loop free for health checks meanwhile.
        return await asyncio.to_thread(lambda: [execute_tool(request) for request in requests])

    @api.post("/v1/score", response_model=ScoreResponse)
    async def score(self, http_request: Request) -> Response:
        return await self._answer("score", http_request, lambda: self._score_answer(http_request))

    async def _score_answer(self, http_request: Request) -> Response:
        body = await read_body(http_request, self.settings.max_body_bytes)
        request = parse_body(ScoreRequest, body)
        try:
            coefficients_for(request.method, request.coefficients)
        except (TypeError, ValueError) as error:
            raise HttpError(422, f"coefficients: {short_text(str(error))}") from None
        hits = self.results.hits
        try:
            # No await from here to the answer: see reward_service/idempotency.py for why that matters.
            answer = self.results.get_or_compute(
                request.request_id, fingerprint(body), lambda: self._score_to_json(request)
            )
        except RequestIdReused as error:
            raise HttpError(409, str(error)) from None
        if self.results.hits > hits:
            self.report("cache_hit")
        return json_response(answer)

    def _score_to_json(self, request: ScoreRequest) -> bytes:
        # On the event loop, not in a thread: scoring a chunk takes milliseconds and holds the GIL anyway, so
        # a thread hop would only add latency. It is also what keeps the idempotency map race-free.
        response = score_batch(request)
        self.report("scored_rollouts", len(response.scores))
        return response.model_dump_json().encode()

    async def _answer(
        self, endpoint: str, http_request: Request, respond: Callable[[], Awaitable[Response]]
    ) -> Response:
        """`respond()`'s answer to an authorized request, counted under `endpoint` with its status: a
        refusal as `{"error": one line}`, anything unexpected as a logged 500 that says only its type."""
        start = time.perf_counter()
        try:
            authorize(http_request, self.token)
            response = await respond()
        except HttpError as error:
            self.report("request", endpoint, str(error.status), time.perf_counter() - start)
            return JSONResponse(error.body(), status_code=error.status)
        except Exception as error:  # a bug: the client learns nothing but that, the log has the traceback
            log.exception("%s %s failed", http_request.method, http_request.url.path)
            self.report("request", endpoint, "500", time.perf_counter() - start)
            return JSONResponse({"error": f"internal error ({type(error).__name__})"}, status_code=500)
        self.report("request", endpoint, "ok", time.perf_counter() - start)
        return response

    async def _bounded(self, awaitable: Awaitable[ToolResponse]) -> ToolResponse:
        try:
            return await asyncio.wait_for(awaitable, timeout=self.settings.request_timeout_s)
        except TimeoutError:
            raise HttpError(504, f"request took longer than {self.settings.request_timeout_s} s") from None


def cpus_needed(settings: ServiceSettings) -> float:
    """Logical CPUs the application reserves at its minimum size."""
    return settings.replicas * settings.replica_cpus


def build_app(settings: ServiceSettings, token: str | None = None) -> serve.Application:
    actor_options = {"num_cpus": settings.replica_cpus, "runtime_env": {"env_vars": REPLICA_ENV}}
    return RewardServer.options(ray_actor_options=actor_options, **_scaling(settings)).bind(settings, token)


def start(
    settings: ServiceSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8100,
    num_cpus: int | None = None,
    token: str | None = None,
    insecure_no_token: bool = False,
) -> str:
    """Start Ray (locally, every port on loopback, unless RAY_ADDRESS names a cluster) and the application;
    return its base URL. Refuses (rft.auth.ExposedWithoutToken), before starting anything, to listen beyond
    loopback without a token unless `insecure_no_token`."""
    check_exposure(host, token, env_var=TOKEN_ENV, insecure=insecure_no_token)
    if not ray.is_initialized():
        _init_ray(num_cpus)
    available = ray.cluster_resources().get("CPU", 0.0)
    if cpus_needed(settings) > available:
        # Serve would otherwise wait forever for replicas that can never be scheduled.
        raise ValueError(
            f"{settings.replicas} replicas x {settings.replica_cpus} CPU need {cpus_needed(settings):.2f} CPUs "
            f"but Ray has {available:g}; lower --replica-cpus or --replicas"
        )
    serve.start(http_options={"host": host, "port": port})
    serve.run(build_app(settings, token), name=APP_NAME, route_prefix="/")
    return f"http://{host}:{port}"


def _init_ray(num_cpus: int | None) -> None:
    if os.environ.get("RAY_ADDRESS"):  # a cluster's Ray: its ports are the cluster's (docs/SECURITY.md)
        ray.init(log_to_driver=False, namespace=APP_NAME)
        return
    # Serve moves HTTP bodies between its proxy and the replicas as Ray objects; above this size (100 KiB by
    # default) they go through the shared-memory object store, which added ~5-8 ms to a raw 224 px image
    # call (docs/PERFORMANCE.md). Read by the processes of a Ray started here; a cluster sets it in its own
    # environment. A value the caller set wins.
    os.environ.setdefault("RAY_max_direct_call_object_size", str(DIRECT_CALL_BYTES))
    init_loopback_ray(num_cpus=num_cpus, namespace=APP_NAME)


def stop() -> None:
    serve.shutdown()
    with contextlib.suppress(ValueError):  # never started, or already gone
        ray.kill(ray.get_actor(HUB_NAME, namespace=APP_NAME))
    ray.shutdown()

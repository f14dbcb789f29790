"""The rollout server's HTTP application (FastAPI on uvicorn) around one vLLM async engine.

Endpoints: POST /v1/samples (single-turn, n per image), POST /v1/episodes (paper 003 episodes, n per
image), POST /v1/chat/completions (OpenAI-compatible, for teachers in dataset construction), POST
/v1/weights and POST /v1/adapters (change the policy; need the shared token), GET /healthz, /readyz,
/metrics (Prometheus).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from rft.codec import decode_pil
from rft.models.conversation import ConversationTokenizer
from rft.rollout.sampling import SampleGroup, SampleResponse, completion_out
from rollout_server import openai_compat
from rollout_server.api import AdapterRequest, EpisodeRequest, EpisodeResponse, SampleRequest, episode_out
from rollout_server.episodes import EpisodeRunner

MAX_WEIGHTS_BYTES = 64 * 2**30


class EngineNotReady(RuntimeError):
    """A sampling request arrived before the engine finished starting (a 503 the client retries)."""


class Metrics:
    """Prometheus metrics of one worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tokens = Counter(
            "rollout_generated_tokens", "Tokens sampled by the model", registry=self.registry
        )
        self.requests = Counter(
            "rollout_requests", "Requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.queue = Gauge("rollout_queue_depth", "Requests in flight in this worker", registry=self.registry)
        self.tokens_per_second = Gauge(
            "rollout_tokens_per_second", "Sampled tokens/s of the last request", registry=self.registry
        )
        self.turns = Histogram(
            "rollout_episode_turns",
            "Model turns per episode",
            buckets=(1, 2, 3, 4, 5, 6, 8),
            registry=self.registry,
        )
        self.tool_seconds = Histogram(
            "rollout_tool_call_seconds",
            "Tool call latency",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=self.registry,
        )
        self.weights_version = Gauge(
            "rollout_weights_version", "Weight updates applied", registry=self.registry
        )

    def record_tokens(self, count: int, seconds: float) -> None:
        self.tokens.inc(count)
        if seconds > 0:
            self.tokens_per_second.set(count / seconds)


@dataclass
class ServerState:
    runner: EpisodeRunner | None = None
    sampler: Any = None
    tokenizer: ConversationTokenizer | None = None
    token: str | None = None
    weights_version: int = 0
    metrics: Metrics = field(default_factory=Metrics)
    startup_error: str | None = None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _authorized(request: Request, token: str | None) -> str | None:
    """None when the request carries the server's token; otherwise why it is refused."""
    if not token:
        return "this server was started without --token; state-changing endpoints are disabled"
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return "missing or wrong token: send 'Authorization: Bearer <token>'"
    return None


def create_app(build_state: Any) -> FastAPI:
    """`build_state()` returns a ready `ServerState` (it builds the engine); it runs at start-up."""
    state = ServerState()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = await asyncio.to_thread(build_state)
        state.__dict__.update({k: v for k, v in built.__dict__.items() if k != "metrics"})
        yield
        if state.sampler is not None:
            state.sampler.shutdown()

    app = FastAPI(title="rollout_server", lifespan=lifespan)
    app.state.rollout = state

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"ok": True}

    @app.get("/readyz")
    async def readyz() -> Response:
        if state.runner is None:
            return _error(503, state.startup_error or "engine starting")
        return JSONResponse(
            {
                "ready": True,
                "weights_version": state.weights_version,
                "max_tool_calls": state.runner.max_tool_calls,
            }
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def _parse(request: Request, model: type) -> Any:
        return model.model_validate_json(await request.body())

    @asynccontextmanager
    async def tracked(endpoint: str) -> AsyncIterator[None]:
        """Queue depth while the request runs; the request counted with its outcome."""
        if state.runner is None:
            raise EngineNotReady(state.startup_error or "engine starting")
        state.metrics.queue.inc()
        status = "500"
        try:
            yield
            status = "200"
        finally:
            state.metrics.queue.dec()
            state.metrics.requests.labels(endpoint, status).inc()

    @app.post("/v1/samples")
    async def samples(request: Request) -> Response:
        body = await _parse(request, SampleRequest)
        start = time.perf_counter()
        async with tracked("samples"):
            images = [decode_pil(data) for data in body.images]
            results = await state.runner.sample_each(
                body.messages,
                images,
                n=body.n,
                settings=body.sampling.settings(),
                adapter=body.sampling.adapter,
            )
        groups = [
            SampleGroup(
                prompt_ids=prompt,
                completions=[completion_out(c, state.tokenizer.decode(c.token_ids)) for c in completions],
            )
            for prompt, completions in results
        ]
        sampled = sum(len(c.token_ids) for group in groups for c in group.completions)
        state.metrics.record_tokens(sampled, time.perf_counter() - start)
        response = SampleResponse(groups=groups, weights_version=state.weights_version)
        return Response(response.model_dump_json(), media_type="application/json")

    @app.post("/v1/episodes")
    async def episodes(request: Request) -> Response:
        body = await _parse(request, EpisodeRequest)
        start = time.perf_counter()
        async with tracked("episodes"):
            images = [decode_pil(data) for data in body.images]
            groups = await state.runner.episodes_each(
                images, n=body.n, settings=body.sampling.settings(), adapter=body.sampling.adapter
            )
        for episode in (e for group in groups for e in group):
            state.metrics.turns.observe(len(episode.turns))
            for call in episode.tool_calls:
                state.metrics.tool_seconds.observe(call.seconds)
        sampled = sum(episode.completion_tokens for group in groups for episode in group)
        state.metrics.record_tokens(sampled, time.perf_counter() - start)
        response = EpisodeResponse(
            groups=[[episode_out(e) for e in group] for group in groups],
            weights_version=state.weights_version,
        )
        return Response(response.model_dump_json(), media_type="application/json")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            payload = await request.json()
            messages, images, tools, settings = openai_compat.parse_request(payload)
        except (ValueError, TypeError, KeyError) as error:
            return _error(400, f"bad chat completion request: {error}")
        tokenizer = ConversationTokenizer(state.tokenizer.processor, state.tokenizer.arch, tools=tools or [])
        prompt = tokenizer.prompt_ids(messages)
        (completion,) = await state.sampler.sample(prompt, images, n=1, settings=settings)
        text = state.tokenizer.decode(
            [t for t in completion.token_ids if t != state.tokenizer.end_of_turn_id]
        )
        state.metrics.record_tokens(len(completion.token_ids), 0)
        state.metrics.requests.labels("chat", "200").inc()
        return JSONResponse(
            openai_compat.response(text, completion.finish_reason, len(prompt), len(completion.token_ids))
        )

    @app.post("/v1/weights")
    async def weights(request: Request) -> Response:
        refused = _authorized(request, state.token)
        if refused:
            state.metrics.requests.labels("weights", "403").inc()
            return _error(403, refused)
        payload = await request.body()
        if not payload or len(payload) > MAX_WEIGHTS_BYTES:
            return _error(400, "send the weights as a safetensors body (application/octet-stream)")
        try:
            loaded = await state.sampler.update_weights(payload)
        except Exception as error:  # a bad payload must not take the worker down
            return _error(400, f"could not load the weights: {str(error).splitlines()[0][:300]}")
        state.weights_version += 1
        state.metrics.weights_version.set(state.weights_version)
        state.metrics.requests.labels("weights", "200").inc()
        return JSONResponse({"loaded": loaded, "weights_version": state.weights_version})

    @app.post("/v1/adapters")
    async def adapters(request: Request) -> Response:
        refused = _authorized(request, state.token)
        if refused:
            return _error(403, refused)
        body = await _parse(request, AdapterRequest)
        if not (Path(body.path) / "adapter_config.json").is_file():
            return _error(400, f"'{body.path}' is not a PEFT adapter folder (no adapter_config.json)")
        await state.sampler.add_adapter(body.name, Path(body.path))
        state.weights_version += 1
        state.metrics.weights_version.set(state.weights_version)
        return JSONResponse({"adapter": body.name, "weights_version": state.weights_version})

    @app.exception_handler(EngineNotReady)
    async def not_ready(request: Request, error: EngineNotReady) -> Response:
        return _error(503, f"not ready: {error}")

    @app.exception_handler(ValueError)
    async def bad_request(request: Request, error: ValueError) -> Response:
        # pydantic's ValidationError is a ValueError: a malformed body is the client's error, in one line.
        first = str(error).splitlines()
        message = " ".join(first[:3])[:500] if first else type(error).__name__
        return _error(400, message)

    return app

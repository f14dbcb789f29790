"""POST /v1/samples (single-turn, n per image) and POST /v1/episodes (paper 003 tool episodes, n per image)."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request, Response

from rft.rollout.sampling import SampleGroup, SampleResponse, completion_out
from rollout_server.api import (
    MAX_ROLLOUT_BODY_BYTES,
    EpisodeRequest,
    EpisodeResponse,
    SampleRequest,
    decode_images,
    episode_out,
)
from rollout_server.errors import bad_input
from rollout_server.routes.bodies import model_response, parse_body
from rollout_server.service import Service

router = APIRouter()


@router.post("/v1/samples", name="samples")
async def samples(request: Request, service: Service) -> Response:
    body = await parse_body(request, SampleRequest, max_bytes=MAX_ROLLOUT_BODY_BYTES)
    start = time.perf_counter()
    with service.serving("samples") as engine, bad_input(ValueError):
        images = await asyncio.to_thread(decode_images, body.named_images())
        results = await engine.runner.sample_each(
            body.message_dicts(),
            images,
            n=body.n,
            settings=body.sampling.settings(),
            adapter=body.sampling.adapter,
        )
    groups = [
        SampleGroup(
            prompt_ids=prompt,
            completions=[completion_out(c, engine.tokenizer.decode(c.token_ids)) for c in completions],
        )
        for prompt, completions in results
    ]
    sampled = sum(len(c.token_ids) for group in groups for c in group.completions)
    service.metrics.record_tokens(sampled, time.perf_counter() - start)
    return model_response(SampleResponse(groups=groups, weights_version=service.weights_version))


@router.post("/v1/episodes", name="episodes")
async def episodes(request: Request, service: Service) -> Response:
    body = await parse_body(request, EpisodeRequest, max_bytes=MAX_ROLLOUT_BODY_BYTES)
    start = time.perf_counter()
    with service.serving("episodes") as engine, bad_input(ValueError):
        images = await asyncio.to_thread(decode_images, body.named_images())
        groups = await engine.runner.episodes_each(
            images, n=body.n, settings=body.sampling.settings(), adapter=body.sampling.adapter
        )
    service.metrics.record_episodes(groups, time.perf_counter() - start)
    response = EpisodeResponse(
        groups=[[episode_out(e) for e in group] for group in groups], weights_version=service.weights_version
    )
    return model_response(response)

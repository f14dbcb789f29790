"""POST /v1/chat/completions: the OpenAI-compatible subset a dataset-construction teacher needs
(rollout_server.openai_compat)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from rft.models.conversation import ConversationTokenizer
from rollout_server import openai_compat
from rollout_server.errors import bad_input
from rollout_server.routes.bodies import read_body
from rollout_server.service import Service

router = APIRouter()


@router.post("/v1/chat/completions", name="chat")
async def chat_completions(request: Request, service: Service) -> JSONResponse:
    with bad_input(ValueError, TypeError, KeyError, prefix="bad chat completion request: "):
        payload = json.loads(await read_body(request))
        messages, images, tools, settings = openai_compat.parse_request(payload)
    with service.serving("chat") as engine, bad_input(ValueError):
        # The request's own tools go into the system prompt, so it needs its own tokenizer.
        tokenizer = ConversationTokenizer(
            engine.tokenizer.processor, engine.tokenizer.arch, tools=tools or []
        )
        prompt = tokenizer.prompt_ids(messages)
        (completion,) = await engine.sampler.sample(prompt, images, n=1, settings=settings)
    end_of_turn = engine.tokenizer.end_of_turn_id
    text = engine.tokenizer.decode([t for t in completion.token_ids if t != end_of_turn])
    service.metrics.record_tokens(len(completion.token_ids), 0)
    return JSONResponse(
        openai_compat.response(text, completion.finish_reason, len(prompt), len(completion.token_ids))
    )

"""POST /v1/chat/completions: the OpenAI-compatible subset a dataset-construction teacher needs
(rollout_server.openai_compat)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from rft.models.conversation import ConversationTokenizer
from rft.prompts.episodes import Message
from rollout_server import openai_compat
from rollout_server.api import MAX_CHAT_BODY_BYTES
from rollout_server.errors import bad_input
from rollout_server.routes.bodies import parse_body
from rollout_server.service import Service

router = APIRouter()


@router.post("/v1/chat/completions", name="chat")
async def chat_completions(request: Request, service: Service) -> JSONResponse:
    body = await parse_body(request, openai_compat.ChatRequest, max_bytes=MAX_CHAT_BODY_BYTES)
    with service.serving("chat") as engine, bad_input(ValueError):
        # Decoding and tokenising take a while for big inputs: off the event loop, so /healthz still answers.
        messages, images = await asyncio.to_thread(openai_compat.prompt_inputs, body)
        prompt = await asyncio.to_thread(_prompt_ids, engine.tokenizer, messages, body.tools or [])
        (completion,) = await engine.sampler.sample(prompt, images, n=1, settings=body.settings())
    end_of_turn = engine.tokenizer.end_of_turn_id
    text = engine.tokenizer.decode([t for t in completion.token_ids if t != end_of_turn])
    service.metrics.record_tokens(len(completion.token_ids), 0)
    return JSONResponse(
        openai_compat.response(text, completion.finish_reason, len(prompt), len(completion.token_ids))
    )


def _prompt_ids(tokenizer: ConversationTokenizer, messages: list[Message], tools: list[dict]) -> list[int]:
    # The request's own tools go into the system prompt, so it needs its own tokenizer.
    return ConversationTokenizer(tokenizer.processor, tokenizer.arch, tools=tools).prompt_ids(messages)

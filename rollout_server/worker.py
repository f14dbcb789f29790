"""One rollout worker: a vLLM engine, the episode runner and the HTTP app, served by uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from reward_service.client import connect
from rft.models.conversation import ConversationTokenizer
from rft.models.loading import detect_arch, install_chat_template
from rft.tools.schemas import tool_schemas
from rollout_server.app import create_app
from rollout_server.episodes import EpisodeRunner
from rollout_server.sampling import VLLMSampler
from rollout_server.service import Engine


def build_engine(args: argparse.Namespace) -> Engine:
    from transformers import AutoProcessor

    arch = detect_arch(args.model)
    processor = install_chat_template(AutoProcessor.from_pretrained(args.model, local_files_only=True), arch)
    tokenizer = ConversationTokenizer(processor, arch, tools=tool_schemas(args.tool_names))
    sampler = VLLMSampler(
        args.model,
        max_model_len=args.max_model_len,
        max_images_per_prompt=args.max_tool_calls + 1,
        seed=args.seed,
        enable_lora=args.enable_lora,
        max_lora_rank=args.max_lora_rank,
        gpu_memory_utilization=args.gpu_memory_utilization,
        kv_cache_gib=args.kv_cache_gib,
    )
    runner = EpisodeRunner(
        sampler,
        tokenizer,
        connect(args.reward_service),
        max_tool_calls=args.max_tool_calls,
        max_model_len=args.max_model_len,
        image_size=args.image_size,
    )
    return Engine(sampler=sampler, runner=runner, tokenizer=tokenizer)


def serve(args: argparse.Namespace) -> None:
    app = create_app(lambda: build_engine(args), token=args.token)
    print(f"rollout_server worker starting on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")

"""`python -m rollout_server`: serve a policy with vLLM for GRPO rollouts (single-turn samples and paper 003
tool episodes), with token-protected weight sync.

    python -m rollout_server --model runs/demo/sft2 --token $RFT_ROLLOUT_TOKEN               # one worker
    python -m rollout_server --model /ckpt/Qwen2.5-VL-7B-Instruct --workers 8 --port 8200    # one per GPU
    python -m rollout_server --model DIR --reward-service http://127.0.0.1:8100              # tools via Ray

With --workers N the command starts N workers on ports PORT..PORT+N-1 (GPU i for worker i when GPUs exist)
and prints their URLs; `rollout_server.client.RolloutClient` spreads requests over them. The token comes
from --token or the RFT_ROLLOUT_TOKEN environment variable; without one, /v1/weights and /v1/adapters
refuse every request; with one, /metrics and /openapi.json want it too. The server binds to 127.0.0.1 unless
--host says otherwise, and refuses to listen beyond loopback without a token unless --insecure-no-token
(docs/SECURITY.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rft.auth import check_exposure, resolve_token
from rft.errors import RftError
from rft.tools.toolsets import ToolSetError, tool_set_from_text

# The docstring above is the --help text. This module is shared by __main__ (a worker) and pool (--workers N).
TOKEN_ENV = "RFT_ROLLOUT_TOKEN"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m rollout_server",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True, help="local checkpoint directory (no hub ids)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=int, default=8200, help="port of the first worker")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (one per GPU on GPU hosts)")
    parser.add_argument("--token", default=None, help=f"shared token for weight updates (or ${TOKEN_ENV})")
    parser.add_argument(
        "--insecure-no-token",
        action="store_true",
        help="listen beyond loopback without a token: anyone who reaches the port may sample and read /metrics",
    )
    parser.add_argument(
        "--reward-service",
        default="inprocess",
        help="where tools run: 'inprocess' (default) or the reward service URL",
    )
    parser.add_argument("--max-model-len", type=int, default=4096, help="context length in tokens")
    parser.add_argument("--max-tool-calls", type=int, default=3, help="tool calls per episode (paper 003: 3)")
    parser.add_argument(
        "--tools",
        default="all",
        help="the tool set episodes offer and may run: a set name (all, zoom_in, zoom_in+frequency, "
        "zoom_in+texture, zoom_in+structure) or comma-separated tool names; a trainer's run.tools must match",
    )
    parser.add_argument("--image-size", type=int, default=224, help="side of ZoomInTool's output")
    parser.add_argument("--enable-lora", action="store_true", help="accept LoRA adapters (/v1/adapters)")
    parser.add_argument("--max-lora-rank", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gpu-memory-utilization", type=float, default=None, help="vLLM's KV-cache share (CPU: of RAM)"
    )
    parser.add_argument(
        "--kv-cache-gib",
        type=float,
        default=None,
        help="an explicit KV-cache size in GiB instead of a share (small CPU machines, several engines per host)",
    )
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file():
        parser.error(f"--model '{args.model}' is not a local checkpoint directory (no config.json)")
    if args.workers < 1 or args.max_tool_calls < 0 or args.max_model_len < 256:
        parser.error("--workers must be >= 1, --max-tool-calls >= 0 and --max-model-len >= 256")
    if args.kv_cache_gib is not None and not args.kv_cache_gib > 0:
        parser.error(f"--kv-cache-gib must be a positive size in GiB, not {args.kv_cache_gib}")
    try:
        args.tool_names = tool_set_from_text(args.tools)
    except ToolSetError as error:
        parser.error(f"--tools: {error}")
    args.token = resolve_token(args.token, TOKEN_ENV)
    _check_exposure(parser, args)
    return args


def _check_exposure(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse (exit 2, one line) to listen beyond loopback without a token unless --insecure-no-token, before
    any engine is built; then say so loudly."""
    try:
        warning = check_exposure(args.host, args.token, env_var=TOKEN_ENV, insecure=args.insecure_no_token)
    except RftError as error:
        parser.exit(2, f"error: {error}\n")
    if warning:
        print(warning, file=sys.stderr, flush=True)


def worker_argv(args: argparse.Namespace, port: int) -> list[str]:
    """The command line of one worker of a --workers N launch."""
    argv = [sys.executable, "-m", "rollout_server", "--model", str(args.model), "--host", args.host]
    argv += ["--port", str(port), "--reward-service", args.reward_service]
    argv += ["--max-model-len", str(args.max_model_len), "--max-tool-calls", str(args.max_tool_calls)]
    argv += ["--image-size", str(args.image_size), "--seed", str(args.seed), "--tools", args.tools]
    argv += ["--max-lora-rank", str(args.max_lora_rank)] + (["--enable-lora"] if args.enable_lora else [])
    argv += ["--insecure-no-token"] if args.insecure_no_token else []
    if args.gpu_memory_utilization is not None:
        argv += ["--gpu-memory-utilization", str(args.gpu_memory_utilization)]
    if args.kv_cache_gib is not None:
        argv += ["--kv-cache-gib", str(args.kv_cache_gib)]
    return argv

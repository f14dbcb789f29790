"""Rollout throughput: the rollout server (vLLM) against TRL's built-in transformers generation, and the
cost of a 3-tool episode against a single-turn sample of the same generated length.

    python benchmarks/bench_rollout.py --preset small --prompts 8 --n 8 --max-tokens 128

Part 1 samples n completions of the first-round prompt for each image with both engines (exactly
`--max-tokens` tokens each, EOS ignored) and reports tokens/s. The transformers side does what TRL's
GRPOTrainer does without vLLM: one `generate` call on the prompts repeated n times, sampling at
temperature 1. Part 2 memorises a 3-tool trajectory into the tiny model (tests/rollout_server), serves it,
and times whole episodes against single-turn samples of the episodes' generated length.
Figures go to docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "rollout_server"))


def transformers_tokens_per_second(model_dir: Path, images: list, n: int, max_tokens: int) -> float:
    from rft.models.loading import load_policy
    from rft.prompts.episodes import first_turn_messages

    model, processor = load_policy(model_dir)
    from rft.tools import tool_schemas

    processor.tokenizer.padding_side = "left"
    prompt = processor.apply_chat_template(
        first_turn_messages(), tools=tool_schemas(), add_generation_prompt=True, tokenize=False
    )
    repeated = [image for image in images for _ in range(n)]
    inputs = processor(text=[prompt] * len(repeated), images=repeated, return_tensors="pt", padding=True)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            **inputs, do_sample=True, temperature=1.0, max_new_tokens=max_tokens, min_new_tokens=max_tokens
        )
    seconds = time.perf_counter() - start
    generated = (out.shape[1] - inputs["input_ids"].shape[1]) * out.shape[0]
    return generated / seconds


def server_tokens_per_second(client, images: list, n: int, max_tokens: int, repeats: int) -> list[float]:
    from rft.prompts.episodes import first_turn_messages
    from rft.rollout.sampling import Sampling

    sampling = Sampling(max_tokens=max_tokens, ignore_eos=True)
    client.samples(first_turn_messages(), images[:1], n=1, sampling=Sampling(max_tokens=4))  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        reply = client.samples(first_turn_messages(), images, n=n, sampling=sampling)
        seconds = time.perf_counter() - start
        rates.append(sum(len(c.token_ids) for g in reply.groups for c in g.completions) / seconds)
    return rates


def serve(model_dir: Path, port: int):
    from conftest import start_server, wait_until_ready

    proc = start_server(model_dir, port)
    wait_until_ready(f"http://127.0.0.1:{port}", proc)
    return proc


def episode_cost(model_cache: Path, port: int, n: int, repeats: int) -> dict:
    from conftest import stop_server
    from protocol_model import THREE_TOOLS, protocol_image, train_protocol_model

    from rft.models.tiny import ensure_tiny_model
    from rft.prompts.episodes import first_turn_messages
    from rft.rollout.sampling import Sampling
    from rollout_server.client import RolloutClient

    base = ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny")
    model_dir = train_protocol_model(base, model_cache / "protocol-3tools", steps=160, turns=THREE_TOOLS)
    proc = serve(model_dir, port)
    try:
        client = RolloutClient(f"http://127.0.0.1:{port}")
        images = [protocol_image(seed) for seed in range(4)]
        client.episodes(images[:1], n=1, sampling=Sampling(max_tokens=64))  # warm-up
        episode_s, single_s, calls = [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            groups, _ = client.episodes(images, n=n, sampling=Sampling(max_tokens=64))
            episode_s.append(time.perf_counter() - start)
            episodes = [e for g in groups for e in g]
            calls.append(statistics.mean(len(e.tool_calls) for e in episodes))
            length = round(statistics.mean(e.completion_tokens for e in episodes))
            start = time.perf_counter()
            client.samples(
                first_turn_messages(), images, n=n, sampling=Sampling(max_tokens=length, ignore_eos=True)
            )
            single_s.append(time.perf_counter() - start)
        return {
            "tool_calls_per_episode": statistics.mean(calls),
            "generated_tokens_per_episode": length,
            "episode_batch_s": statistics.median(episode_s),
            "single_turn_batch_s": statistics.median(single_s),
            "ratio": statistics.median(episode_s) / statistics.median(single_s),
        }
    finally:
        stop_server(proc)


def main(argv: list[str] | None = None) -> int:
    head, _, tail = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(
        description=head, epilog=tail, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="small", choices=["tiny", "small"], help="tiny-model size")
    parser.add_argument("--prompts", type=int, default=8, help="images per throughput batch")
    parser.add_argument("--n", type=int, default=8, help="completions per image")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens per completion (EOS ignored)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each engine / episode set")
    parser.add_argument("--port", type=int, default=8290, help="port of the rollout server it starts")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "models", help="tiny-model cache")
    parser.add_argument("--skip-episodes", action="store_true", help="skip part 2 (episodes)")
    parser.add_argument("--skip-throughput", action="store_true", help="skip part 1 (tokens/s)")
    parser.add_argument("--hf-repeats", type=int, default=2, help="runs of the transformers baseline")
    args = parser.parse_args(argv)

    from conftest import stop_server
    from protocol_model import protocol_image

    from rft.models.tiny import ensure_tiny_model
    from rollout_server.client import RolloutClient

    report: dict = {
        "preset": args.preset,
        "prompts": args.prompts,
        "n": args.n,
        "max_tokens": args.max_tokens,
    }
    if not args.skip_throughput:
        model_dir = ensure_tiny_model(args.cache, "qwen2_5_vl", args.preset)
        images = [protocol_image(seed) for seed in range(args.prompts)]
        proc = serve(model_dir, args.port)
        try:
            rates = server_tokens_per_second(
                RolloutClient(f"http://127.0.0.1:{args.port}"), images, args.n, args.max_tokens, args.repeats
            )
        finally:
            stop_server(proc)
        report.update(server_tokens_per_s=statistics.median(rates), server_runs=rates)
        print(json.dumps(report), file=sys.stderr, flush=True)
        hf_rates = [
            transformers_tokens_per_second(model_dir, images, args.n, args.max_tokens)
            for _ in range(args.hf_repeats)
        ]
        report.update(transformers_tokens_per_s=statistics.median(hf_rates), transformers_runs=hf_rates)
        report["ratio"] = report["server_tokens_per_s"] / report["transformers_tokens_per_s"]
        print(json.dumps(report), file=sys.stderr, flush=True)
    if not args.skip_episodes:
        report["episodes"] = episode_cost(args.cache, args.port + 1, args.n, args.repeats)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ZeRO-2 against ZeRO-3 on one GPU: step time and peak memory of a Qwen2.5-VL with the 7B architecture at
reduced depth (each measured in a fresh process), and the trainer's side of a weight sync (gathering every parameter whole, as a sync to the
rollout workers must, and packing it into one bf16 buffer).

    python benchmarks/bench_zero_gpu.py --layers 4 8 12 --stages 2 3 --batch 4 --seq 1024

What runs is the policy's training step as the GRPO trainer takes it (bf16, gradient checkpointing, AdamW,
one image of --image-size per sequence, loss on every position), under `deepspeed.initialize` in one
process; TRL's loop around it is not included (TRL is not installed on the GPU machine, STACK.md). Step time
and peak memory are linear in depth, so two depths give the per-layer cost and an extrapolation to the
28 layers of the full 7B model. Prints a Markdown table and writes it as JSON with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

# Qwen2.5-VL-7B-Instruct's config.json, depth aside.
TEXT_7B = dict(
    hidden_size=3584,
    intermediate_size=18944,
    num_attention_heads=28,
    num_key_value_heads=4,
    vocab_size=152064,
    max_position_embeddings=32768,
    rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]},
)
VISION_7B = dict(
    hidden_size=1280,
    intermediate_size=3420,
    num_heads=16,
    out_hidden_size=3584,
    patch_size=14,
    spatial_merge_size=2,
    temporal_patch_size=2,
    window_size=112,
)
FULL_DEPTH = 28
IMAGE_TOKEN_ID = 151655


def build_model(layers: int, vision_layers: int) -> torch.nn.Module:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config={**TEXT_7B, "num_hidden_layers": layers},
        vision_config={
            **VISION_7B,
            "depth": vision_layers,
            "fullatt_block_indexes": [vision_layers - 1],
        },
        image_token_id=IMAGE_TOKEN_ID,
        tie_word_embeddings=False,
    )
    config._attn_implementation = "sdpa"
    # Built on the GPU in bf16 directly: a CPU fp32 init of billions of random weights takes minutes.
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = Qwen2_5_VLForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    return model


def make_batch(batch: int, seq: int, image_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """`batch` sequences of `seq` tokens, each holding one image's tokens after a short prefix."""
    grid = image_size // 14
    patches = grid * grid
    image_tokens = patches // 4
    if image_tokens + 16 > seq:
        raise SystemExit(f"--seq {seq} is too short for a {image_size}px image ({image_tokens} tokens)")
    ids = torch.randint(0, 150000, (batch, seq), device=device)
    ids[:, 8 : 8 + image_tokens] = IMAGE_TOKEN_ID
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": ids.masked_fill(ids == IMAGE_TOKEN_ID, -100),
        "pixel_values": torch.randn(batch * patches, 3 * 2 * 14 * 14, device=device, dtype=torch.bfloat16),
        "image_grid_thw": torch.tensor([[1, grid, grid]] * batch, device=device),
    }


def ds_config(stage: int, batch: int) -> dict:
    return {
        "train_micro_batch_size_per_gpu": batch,
        "gradient_accumulation_steps": 1,
        "bf16": {"enabled": True},
        "zero_optimization": {"stage": stage, "overlap_comm": True, "contiguous_gradients": True},
        "zero_allow_untested_optimizer": True,
        "gradient_clipping": 1.0,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def gather_and_pack(engine, stage: int) -> tuple[float, int]:
    """Seconds to gather every parameter whole and copy it into one bf16 buffer; the buffer's bytes."""
    import deepspeed

    torch.cuda.synchronize()
    start = time.perf_counter()
    params = list(engine.module.parameters())
    total = sum(p.ds_numel if stage == 3 else p.numel() for p in params)
    buffer = torch.empty(total, dtype=torch.bfloat16, device="cuda")
    offset = 0
    for param in params:
        # A module at a time is what TRL's sync does under ZeRO-3; one parameter at a time bounds memory.
        with deepspeed.zero.GatheredParameters([param], enabled=stage == 3):
            n = param.numel()
            buffer[offset : offset + n].copy_(param.data.reshape(-1))
            offset += n
    torch.cuda.synchronize()
    return time.perf_counter() - start, buffer.numel() * 2


def measure(stage: int, layers: int, args: argparse.Namespace) -> dict:
    import deepspeed

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = build_model(layers, args.vision_layers)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, weight_decay=0.0)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=ds_config(stage, args.batch))
    batch = make_batch(args.batch, args.seq, args.image_size, engine.device)
    times = []
    for step in range(args.warmup + args.steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        loss = engine(**batch).loss
        engine.backward(loss)
        engine.step()
        torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
        if not torch.isfinite(loss):
            raise SystemExit(f"non-finite loss at step {step} (stage {stage}, {layers} layers)")
    peak = torch.cuda.max_memory_allocated()
    resident = torch.cuda.memory_allocated()
    sync_s, sync_bytes = gather_and_pack(engine, stage)
    row = {
        "stage": stage,
        "layers": layers,
        "params_B": n_params / 1e9,
        "step_s": statistics.median(times),
        "steps": times,
        "tokens_per_s": args.batch * args.seq / statistics.median(times),
        "peak_GiB": peak / 2**30,
        "resident_GiB": resident / 2**30,
        "gather_pack_s": sync_s,
        "sync_GB": sync_bytes / 1e9,
    }
    engine.destroy()
    del engine, model, optimizer, batch
    torch.cuda.empty_cache()
    return row


def extrapolate(rows: list[dict], key: str, stage: int) -> float | None:
    """The figure at full depth, linear in depth through the shallowest and deepest runs of `stage`."""
    runs = sorted((r for r in rows if r["stage"] == stage), key=lambda r: r["layers"])
    if len(runs) < 2:
        return None
    a, b = runs[0], runs[-1]
    per_layer = (b[key] - a[key]) / (b["layers"] - a["layers"])
    return a[key] + per_layer * (FULL_DEPTH - a["layers"])


def table(rows: list[dict]) -> str:
    lines = [
        "| ZeRO | text layers | params (B) | step (s, median) | tokens/s | peak memory (GiB) | gather+pack for sync (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['stage']} | {r['layers']} | {r['params_B']:.2f} | {r['step_s']:.3f} | {r['tokens_per_s']:.0f} "
            f"| {r['peak_GiB']:.1f} | {r['gather_pack_s']:.3f} |"
        )
    for stage in sorted({r["stage"] for r in rows}):
        step, peak = extrapolate(rows, "step_s", stage), extrapolate(rows, "peak_GiB", stage)
        if step is not None:
            lines.append(f"| {stage} | {FULL_DEPTH} (linear extrapolation) | | {step:.3f} | | {peak:.1f} | |")
    return "\n".join(lines)


def run_isolated(stage: int, layers: int, argv: list[str]) -> dict:
    """One measurement in a fresh process: what DeepSpeed keeps allocated after a run would otherwise
    count in the next one's peak."""
    command = [sys.executable, __file__, *argv, "--layers", str(layers), "--stages", str(stage), "--one"]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_here(stage: int, layers: int, args: argparse.Namespace) -> dict:
    for key, value in {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29517",
        "RANK": "0",
        "WORLD_SIZE": "1",
    }.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("LOCAL_RANK", "0")
    import deepspeed

    deepspeed.init_distributed(dist_backend="nccl")
    return measure(stage, layers, args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, nargs="+", default=[4, 8, 12], help="text depths to run")
    parser.add_argument("--vision-layers", type=int, default=4, help="vision depth (the 7B has 32)")
    parser.add_argument("--stages", type=int, nargs="+", default=[2, 3], choices=[2, 3])
    parser.add_argument("--batch", type=int, default=4, help="sequences per step")
    parser.add_argument("--seq", type=int, default=1024, help="tokens per sequence")
    parser.add_argument("--image-size", type=int, default=448, help="image side in pixels (multiple of 28)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")
    if args.one:
        print(json.dumps(measure_here(args.stages[0], args.layers[0], args)))
        return
    shared = [
        f"--{k.replace('_', '-')}={getattr(args, k)}"
        for k in ("vision_layers", "batch", "seq", "image_size", "warmup", "steps")
    ]
    rows = []
    for layers in args.layers:
        for stage in args.stages:
            rows.append(run_isolated(stage, layers, shared))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{torch.cuda.get_device_name()}, torch {torch.__version__}\n")
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

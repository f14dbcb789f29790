"""Building a vLLM engine for a local checkpoint, with the settings vLLM's CPU build needs.

On a CPU host (no CUDA), `gpu_memory_utilization` is the share of CPU memory given to the KV cache and the
default (0.92 of a NUMA node) fails to start on small machines, so a small share is used; CUDA graphs do not
exist, so the engine runs eagerly; and chunked prefill is off, because a seeded request whose prompt is
split over steps makes the CPU worker rewind its torch.Generator, which CPU generators refuse ("CPU Generator
does not use offset"), killing the engine; without chunking every prompt fits one step. On GPU hosts the
ordinary vLLM defaults apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

CPU_KV_CACHE_SHARE = 0.2


def on_cpu_host() -> bool:
    return not torch.cuda.is_available()


def engine_kwargs(
    model_path: Path | str,
    *,
    max_model_len: int = 2048,
    max_images_per_prompt: int = 4,
    seed: int = 0,
    enable_lora: bool = False,
    max_lora_rank: int = 16,
    gpu_memory_utilization: float | None = None,
    kv_cache_gib: float | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `vllm.LLM` / `AsyncEngineArgs` serving `model_path` with image prompts."""
    cpu = on_cpu_host()
    kwargs: dict[str, Any] = {
        "model": str(model_path),
        "max_model_len": max_model_len,
        "limit_mm_per_prompt": {"image": max_images_per_prompt, "video": 0},
        "seed": seed,
        "dtype": "float32" if cpu else "bfloat16",
        "gpu_memory_utilization": gpu_memory_utilization or (CPU_KV_CACHE_SHARE if cpu else 0.9),
        "enforce_eager": cpu,
    }
    if cpu:
        kwargs.update(enable_chunked_prefill=False, max_num_batched_tokens=max(max_model_len, 4096))
    if kv_cache_gib is not None:
        # An explicit size: vLLM's CPU share counts the worker's own RSS against it, so a small share of a
        # small machine comes out negative ("requested memory for kv (-0.14/1.18 GiB)") and the engine dies.
        kwargs["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
    if enable_lora:
        kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank)
    return kwargs

"""Tiny models generate with vLLM's CPU build from a spawned engine core (a real engine, not a mock)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("vllm_generate.py")


@pytest.mark.slow
def test_vllm_samples_n_completions_with_logprobs(tiny_model_dir, tmp_path):
    out = tmp_path / "samples.json"
    n = 3
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tiny_model_dir), str(out), str(n)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    prompts = json.loads(out.read_text())
    assert len(prompts) == 2
    for prompt in prompts:
        # The image was expanded into many placeholder tokens by vLLM's multimodal processor.
        assert len(prompt["prompt_token_ids"]) > 40
        assert len(prompt["completions"]) == n
        for completion in prompt["completions"]:
            assert 1 <= len(completion["token_ids"]) <= 12
            assert len(completion["logprobs"]) == len(completion["token_ids"])
            assert all(math.isfinite(lp) and lp <= 0 for lp in completion["logprobs"])


@pytest.mark.slow
def test_seeded_sampling_of_many_long_prompts_is_reproducible(tmp_path):
    """With chunked prefill (vLLM's default) this killed the CPU engine: "CPU Generator does not use offset"."""
    from rft.models.tiny import ensure_tiny_model

    model_dir = ensure_tiny_model(tmp_path / "models", "qwen2_5_vl", "tiny")
    out = tmp_path / "seeded.json"
    script = Path(__file__).with_name("vllm_seeded.py")
    result = subprocess.run(
        [sys.executable, str(script), str(model_dir), str(out)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sampled = json.loads(out.read_text())
    assert sampled["same"] and all(len(tokens) == 8 for tokens in sampled["first"])

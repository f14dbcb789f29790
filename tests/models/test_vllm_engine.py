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

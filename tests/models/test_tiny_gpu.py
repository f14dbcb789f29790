"""On a CUDA machine the tiny models run in bfloat16 on the GPU (skipped elsewhere by the `gpu` marker)."""

import numpy as np
import pytest
import torch
from PIL import Image

from rft.eval.scoring import fast_answer_messages
from rft.models.loading import load_policy


@pytest.mark.gpu
def test_tiny_model_generates_on_cuda_in_bfloat16(tiny_model_dir):
    model, processor = load_policy(tiny_model_dir, dtype="bfloat16")
    model = model.to("cuda")
    text = processor.apply_chat_template(fast_answer_messages(), add_generation_prompt=True, tokenize=False)
    image = Image.fromarray((np.random.default_rng(0).random((224, 224, 3)) * 255).astype("uint8"))
    inputs = processor(text=[text], images=[image], return_tensors="pt").to("cuda")
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
    assert next(model.parameters()).dtype == torch.bfloat16

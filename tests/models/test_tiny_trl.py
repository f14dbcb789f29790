"""TRL's GRPOTrainer trains the tiny models on CPU with image prompts: parameters change, loss is finite."""

import math

import numpy as np
import torch
from datasets import Dataset
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import GRPOConfig, GRPOTrainer


def distinct_characters(completions, **_) -> list[float]:
    """Varies between completions of a random model, so group advantages are non-zero."""
    return [float(len(set(c[0]["content"]))) for c in completions]


def image_prompts(n: int) -> Dataset:
    rng = np.random.default_rng(0)
    images = [Image.fromarray((rng.random((224, 224, 3)) * 255).astype("uint8")) for _ in range(n)]
    prompt = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this real?"}]}]
    return Dataset.from_dict({"prompt": [prompt] * n, "image": images})


def test_two_grpo_steps_change_parameters(tiny_model_dir, tmp_path):
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        num_generations=2,
        per_device_train_batch_size=2,
        max_completion_length=8,
        max_steps=2,
        learning_rate=1e-2,
        weight_decay=0.0,  # without decay, a changed parameter proves a non-zero policy gradient
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=distinct_characters,
        args=args,
        train_dataset=image_prompts(4),
        processing_class=processor,
    )
    trainer.train()
    steps = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(steps) == 2
    assert all(math.isfinite(float(entry["loss"])) for entry in steps)
    changed = [name for name, p in model.named_parameters() if not torch.equal(before[name], p)]
    assert any("visual" in name or "vision" in name for name in changed), "vision tower got no gradient"
    assert any("lm_head" in name for name in changed)

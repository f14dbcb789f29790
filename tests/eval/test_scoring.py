"""Answer-token scoring: P(spoof) is a proper probability that equals the two-class softmax of the model."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from rft.eval.scoring import fast_answer_messages, spoof_probabilities


def images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [Image.fromarray((rng.random((224, 224, 3)) * 255).astype("uint8")) for _ in range(n)]


def test_spoof_probability_matches_manual_two_class_softmax(tiny_model_dir):
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    batch = images(3)
    scores = spoof_probabilities(model, processor, batch, batch_size=2, progress=False)
    assert len(scores) == 3 and all(0.0 < s < 1.0 for s in scores)

    # Recompute the first image's score one token at a time, without batching or padding.
    prompt = processor.apply_chat_template(fast_answer_messages(), add_generation_prompt=True, tokenize=False)

    def sequence_logprob(answer: str) -> float:
        inputs = processor(text=[prompt + answer], images=[batch[0]], return_tensors="pt")
        answer_ids = processor.tokenizer.encode(answer, add_special_tokens=False)
        with torch.no_grad():
            logits = model(**inputs).logits[0].float()
        ids = inputs["input_ids"][0]
        n = len(answer_ids)
        positions = range(len(ids) - n, len(ids))
        return sum(torch.log_softmax(logits[p - 1], -1)[ids[p]].item() for p in positions)

    expected = 1 / (1 + np.exp(sequence_logprob("<Real><reason>") - sequence_logprob("<Spoof><reason>")))
    assert scores[0] == pytest.approx(expected, abs=1e-4)

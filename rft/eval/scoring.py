"""Scoring a face by the probability the policy puts on the Spoof answer.

Paper 003 (Sec. 4.1) keeps "the original logits of the classification token" to compute AUC. With a real
tokenizer the class words can span several tokens, so each class is scored by the log-probability of its
whole answer text after the same prefix, and

    P(spoof) = exp(lp_spoof) / (exp(lp_spoof) + exp(lp_real)),

which reduces to the softmax over the two answer tokens' logits when each class is a single token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from tqdm import tqdm

from rft.prompts import tar_fas

# Paper 003's fast answer is "<CLS><reason></reason>" (Appendix B.2) with <CLS> one of the answer tokens of
# the format declaration, "<Real>" / "<Spoof>" (Appendix B.1). The opening "<reason>" is scored with the
# class: byte-level BPE merges "<Spoof>"'s closing ">" with the next "<" into one token ("><"), so "<Spoof>"
# tokenised alone would end in a ">" the model never writes there, and that token's improbability would
# decide (in a trained model, invert) the comparison.
FAST_ANSWER_CLASSES = (tar_fas.ANSWER_REAL + "<reason>", tar_fas.ANSWER_SPOOF + "<reason>")


def fast_answer_messages(system_prompt: str = tar_fas.SYSTEM_PROMPT) -> list[dict]:
    """The first turn of a TAR-FAS episode: system prompt, the image and the first-round query."""
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": tar_fas.FIRST_ROUND_QUERY}]},
    ]


def _continuation_logprobs(
    model: torch.nn.Module,
    processor,
    prompt_text: str,
    images: Sequence[Image.Image],
    continuation: str,
) -> torch.Tensor:
    """Sum of log-probabilities of `continuation` after `prompt_text`, one value per image."""
    tokenizer = processor.tokenizer
    cont_ids = tokenizer.encode(continuation, add_special_tokens=False)
    texts = [prompt_text + continuation] * len(images)
    inputs = processor(text=texts, images=list(images), return_tensors="pt", padding=True)
    ids = inputs["input_ids"]
    k = len(cont_ids)
    if ids[0, -k:].tolist() != cont_ids:
        raise ValueError(f"answer text {continuation!r} does not tokenize on its own after the prompt")
    device = next(model.parameters()).device
    # Left padding keeps the continuation at the end of every row; only its logits are computed.
    with torch.no_grad():
        logits = model(**inputs.to(device), logits_to_keep=k + 1).logits[:, :-1, :].float().cpu()
    logprobs = torch.log_softmax(logits, dim=-1)
    return logprobs.gather(-1, ids[:, -k:].unsqueeze(-1)).squeeze(-1).sum(-1)


def spoof_probabilities(
    model: torch.nn.Module,
    processor,
    images: Sequence[Image.Image],
    *,
    messages: list[dict] | None = None,
    assistant_prefix: str = "",
    classes: tuple[str, str] = FAST_ANSWER_CLASSES,
    batch_size: int = 16,
    progress: bool = True,
) -> list[float]:
    """P(spoof) for each image, from the answer the model would give after `messages` + `assistant_prefix`.

    `classes` is (live answer, spoof answer); the default scores paper 003's fast (first-turn) answer.
    """
    if processor.tokenizer.padding_side != "left":
        processor.tokenizer.padding_side = "left"
    prompt = processor.apply_chat_template(
        messages or fast_answer_messages(), add_generation_prompt=True, tokenize=False
    )
    prompt += assistant_prefix
    live_text, spoof_text = classes
    scores: list[float] = []
    batches = range(0, len(images), batch_size)
    for start in tqdm(batches, desc="scoring", unit="batch", disable=not progress):
        chunk = images[start : start + batch_size]
        lp_live = _continuation_logprobs(model, processor, prompt, chunk, live_text)
        lp_spoof = _continuation_logprobs(model, processor, prompt, chunk, spoof_text)
        scores += torch.sigmoid(lp_spoof - lp_live).tolist()
    return scores

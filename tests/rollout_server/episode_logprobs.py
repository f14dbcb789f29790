"""A test oracle (used by tests only): per-token log-probabilities of sampled episodes under the trainer's model.

The episode's compact ids (rft.models.conversation) are expanded with the processor, so the forward pass
sees every image of the episode: the dataset image and each tool output. Logprobs come back on the compact
positions, aligned with the rollout server's `logprobs` and `mask`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from rft.models.conversation import ConversationTokenizer, ExpandedConversation


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log p(token_t | tokens_<t) for t >= 1 of one sequence; position 0 gets 0 (it has no context)."""
    scaled = logits[:-1].float() / temperature
    picked = torch.log_softmax(scaled, dim=-1).gather(-1, input_ids[1:, None]).squeeze(-1)
    return torch.cat([picked.new_zeros(1), picked])


def sequence_logprobs(
    model: torch.nn.Module, expanded: ExpandedConversation, temperature: float = 1.0
) -> torch.Tensor:
    """Logprobs of the expanded sequence's tokens (gradients flow when grad is enabled)."""
    device = next(model.parameters()).device
    inputs = {key: value.to(device) for key, value in expanded.model_inputs().items()}
    logits = model(**inputs).logits[0]
    return token_logprobs(logits, inputs["input_ids"][0], temperature)


def compact_logprobs(expanded: ExpandedConversation, logprobs: torch.Tensor, length: int) -> torch.Tensor:
    """Move per-token values from the expanded sequence back to the `length` compact positions."""
    out = logprobs.new_zeros(length)
    kept = expanded.origin >= 0
    out[expanded.origin[kept].to(out.device)] = logprobs[kept.to(logprobs.device)]
    return out


def episode_logprobs(
    model: torch.nn.Module,
    tokenizer: ConversationTokenizer,
    token_ids: Sequence[int],
    images: Sequence[Image.Image],
    temperature: float = 1.0,
) -> torch.Tensor:
    """Logprob of every compact token of an episode under `model` (0 at position 0)."""
    expanded = tokenizer.expand_images(token_ids, images)
    return compact_logprobs(expanded, sequence_logprobs(model, expanded, temperature), len(token_ids))

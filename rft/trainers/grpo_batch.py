"""Rollout episodes as the padded batch TRL's `GRPOTrainer._compute_loss` consumes.

An episode (rft.rollout.episode.Episode) holds *compact* ids: one placeholder per image. Here each
episode is expanded with `ConversationTokenizer.expand_images`, the code the rollout server's vLLM and the
SFT trainer share, so the forward pass sees every image of the episode (the dataset image and each tool
output) at the positions vLLM saw them. The expanded sequence is cut into TRL's prompt (everything up to the
first model token: system prompt, dataset image, first query, generation prompt) and completion (the rest:
model turns, the scripted re-examine turn, tool responses with their images). The completion's loss mask is
the episode's `mask` laid out on the expanded ids: 1 exactly on tokens the model sampled, 0 on scripted
text, tool responses and every image token, so only the model's own tokens receive a policy gradient
(paper 003, Eq. 9 sums over the tokens of o_i, the model's output).

The batch uses TRL's keys and layouts (prompt left-padded, completion right-padded; Qwen2.5-VL's
`pixel_values`/`image_grid_thw` concatenated over samples with `num_images` per sample; InternVL's tiles
with `num_tiles` per sample), so TRL's `_get_per_token_logps_and_entropies`, `split_pixel_values_by_grid`
and `shuffle_sequence_dict` handle it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rft.models.conversation import ConversationTokenizer
from rft.rollout.episode import Episode, without_sampled_vision_tokens
from rft.trainers.trl_adapter import pad


@dataclass(frozen=True)
class EpisodeTensors:
    """One episode, expanded and cut at the first model token. Per-token tensors of the completion share
    its length; `token_inputs` (Qwen2.5-VL's `mm_token_type_ids`) cover prompt + completion."""

    prompt_ids: torch.Tensor
    completion_ids: torch.Tensor
    loss_mask: torch.Tensor
    sampling_logps: torch.Tensor
    token_inputs: dict[str, torch.Tensor]
    image_inputs: dict[str, torch.Tensor]
    num_images: int
    truncated: bool


def episode_tensors(episode: Episode, tokenizer: ConversationTokenizer) -> EpisodeTensors:
    """Expand `episode`'s images and split it into TRL's prompt and completion. An episode in which the model
    sampled an image token is kept in the batch (its group's advantages are computed as usual) but trains
    on none of its tokens (`without_sampled_vision_tokens`)."""
    ids, unusable = without_sampled_vision_tokens(episode, tokenizer)
    expanded = tokenizer.expand_images(ids, episode.images)
    split = completion_start(expanded.origin, episode.prompt_length)
    mask = expanded.spread(torch.tensor(episode.mask, dtype=torch.long), fill=0)
    if unusable:
        mask = torch.zeros_like(mask)
    logps = expanded.spread(torch.tensor(episode.logprobs, dtype=torch.float32), fill=0.0)
    return EpisodeTensors(
        prompt_ids=expanded.input_ids[:split],
        completion_ids=expanded.input_ids[split:],
        loss_mask=mask[split:],
        # vLLM reports the logprob of each sampled token; elsewhere the value is meaningless, so zero it.
        sampling_logps=logps[split:] * mask[split:],
        token_inputs=dict(expanded.token_inputs),
        image_inputs=dict(expanded.image_inputs),
        num_images=len(episode.images),
        truncated=episode.truncated,
    )


def completion_start(origin: torch.Tensor, prompt_length: int) -> int:
    """Index in the expanded ids of the first token after the compact prompt (`prompt_length` tokens).
    The prompt ends with the generation prompt's text tokens, never an image, so it is the position right
    after the last expanded token that came from a compact prompt position."""
    in_prompt = ((origin >= 0) & (origin < prompt_length)).nonzero()
    if len(in_prompt) == 0:
        raise ValueError("the episode has an empty prompt")
    return int(in_prompt.max()) + 1


def collate_episodes(
    samples: Sequence[EpisodeTensors],
    *,
    pad_token_id: int,
    mask_truncated: bool = False,
    pad_to_multiple_of: int | None = None,
) -> dict[str, torch.Tensor | list[int]]:
    """The padded batch, in TRL's keys. `mask_truncated` zeroes the loss of truncated episodes
    (TRL's `mask_truncated_completions`)."""
    prompts = [s.prompt_ids for s in samples]
    completions = [s.completion_ids for s in samples]
    loss_masks = [s.loss_mask * (0 if (mask_truncated and s.truncated) else 1) for s in samples]
    batch: dict[str, torch.Tensor | list[int]] = {
        "prompt_ids": _pad(prompts, pad_token_id, "left", pad_to_multiple_of),
        "prompt_mask": _pad([torch.ones_like(p) for p in prompts], 0, "left", pad_to_multiple_of),
        "completion_ids": _pad(completions, pad_token_id, "right", pad_to_multiple_of),
        "completion_mask": _pad([torch.ones_like(c) for c in completions], 0, "right", pad_to_multiple_of),
        # TRL multiplies `completion_mask` by `tool_mask` for the loss; padding is 0 in both.
        "tool_mask": _pad(loss_masks, 0, "right", pad_to_multiple_of),
        "sampling_per_token_logps": _pad(
            [s.sampling_logps for s in samples], 0.0, "right", pad_to_multiple_of
        ),
        "num_images": [s.num_images for s in samples],
    }
    batch.update(_token_inputs(samples, pad_to_multiple_of))
    batch.update(_image_inputs(samples))
    return batch


def _pad(
    tensors: list[torch.Tensor], value: float, side: str, pad_to_multiple_of: int | None
) -> torch.Tensor:
    return pad(tensors, padding_value=value, padding_side=side, pad_to_multiple_of=pad_to_multiple_of)


def _token_inputs(
    samples: Sequence[EpisodeTensors], pad_to_multiple_of: int | None
) -> dict[str, torch.Tensor]:
    """Per-token model inputs laid out like prompt_ids + completion_ids (0 on padding, as the processor
    marks text)."""
    out: dict[str, torch.Tensor] = {}
    for key in samples[0].token_inputs:
        cut = [len(s.prompt_ids) for s in samples]
        heads = [s.token_inputs[key][:n] for s, n in zip(samples, cut, strict=True)]
        tails = [s.token_inputs[key][n:] for s, n in zip(samples, cut, strict=True)]
        out[key] = torch.cat(
            [_pad(heads, 0, "left", pad_to_multiple_of), _pad(tails, 0, "right", pad_to_multiple_of)], dim=1
        )
    return out


def _image_inputs(samples: Sequence[EpisodeTensors]) -> dict[str, torch.Tensor | list[int]]:
    """Image inputs of every sample, concatenated in sample order. Qwen2.5-VL's patches are located by
    `image_grid_thw` and `num_images`; tile-indexed inputs (InternVL) need `num_tiles` per sample, which is
    how TRL's forward and its batch shuffling find each sample's rows."""
    keys = samples[0].image_inputs
    out: dict[str, torch.Tensor | list[int]] = {
        key: torch.cat([s.image_inputs[key] for s in samples], dim=0) for key in keys
    }
    if "image_grid_thw" not in keys and "pixel_values" in keys:
        out["num_tiles"] = [int(s.image_inputs["pixel_values"].shape[0]) for s in samples]
    return out

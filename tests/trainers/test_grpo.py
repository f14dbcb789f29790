"""GRPO on rollout-server episodes (rft.trainers.grpo): masks, advantages, the forward pass with every image,
zero gradient on tokens the model did not generate, and two real steps against a rollout server subprocess.

Most tests replay fixed paper-003 trajectories (tests/rollout_server/protocol_model.py) through a scripted
episode source, with real tool images and the policy's own logprobs, so they need no vLLM. The slow tests
start the real rollout server (vLLM's CPU build) on a protocol model (about 1-2 minutes to start) and run
two processes under DeepSpeed ZeRO-3. The tiny models are built for 56x56 images: at 224x224 the backward
pass of Qwen2.5-VL's Conv3d patch embedding alone takes over 15 s of CPU per step.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import requests
import torch
from datasets import Dataset
from PIL import Image
from trl import GRPOConfig

from reward_service import InProcessRewards
from rft.config import ConfigError
from rft.models.conversation import ConversationError, ConversationTokenizer
from rft.models.loading import detect_arch, load_policy
from rft.prompts.episodes import first_turn_messages
from rft.prompts.rft_fas import rft_fas_messages
from rft.rewards import trl as trl_rewards
from rft.rollout.episode import Episode, ToolCallRecord, model_token_ids, single_turn_episode
from rft.rollout.sampling import CompletionOut
from rft.trainers.grpo import EpisodeGRPOTrainer
from rft.trainers.grpo_batch import collate_episodes, episode_tensors
from rft.trainers.grpo_eval import TargetEvaluation
from rft.trainers.grpo_math import (
    group_advantages,
    nucleus_log_mass,
    sampler_importance_weights,
    token_advantages,
)
from rft.trainers.grpo_metrics import episode_metrics, summarize
from rft.trainers.grpo_recipes import accumulation_steps
from rft.trainers.grpo_rewards import RewardMismatchError, check_totals
from rft.trainers.grpo_settings import UnsupportedSetting
from rft.trainers.grpo_setup import balanced_examples
from rft.trainers.grpo_weights import full_weights
from rft.trainers.trl_adapter import metrics, per_token_logps_and_term

ROLLOUT_TESTS = Path(__file__).resolve().parents[1] / "rollout_server"
sys.path.insert(0, str(ROLLOUT_TESTS))
from episode_logprobs import episode_logprobs  # noqa: E402
from protocol_model import CALL, FAST, ONE_TOOL, THREE_TOOLS, protocol_image, trajectory_ids  # noqa: E402
from scripted_policy import scripted_episode  # noqa: E402

IMAGE_SIDE = 56
KL_STEPS = 6
WRONG_ANSWER = [(FAST, None), (CALL, "FFTTool"), ("<think>smooth skin</think><answer><Real></answer>", None)]
TRAJECTORIES = [ONE_TOOL, THREE_TOOLS, WRONG_ANSWER]


# Two cores shared with other jobs: OpenMP threads spinning against each other slow every step.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def face(seed: int) -> Image.Image:
    return protocol_image(seed, IMAGE_SIDE)


class ScriptedEpisodes:
    """An episode source replaying `TRAJECTORIES` in turn (tools run for real on each image), with the
    policy's own logprobs as the sampling logprobs; it records every weight push."""

    def __init__(self, model: torch.nn.Module, tokenizer: ConversationTokenizer) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.pushes: list[dict[str, torch.Tensor]] = []

    def episodes(self, images, *, n, sampling=None):
        groups = [
            [self.episode(image, TRAJECTORIES[i % len(TRAJECTORIES)]) for i in range(n)] for image in images
        ]
        return groups, len(self.pushes)

    def episode(self, image: Image.Image, turns: list) -> Episode:
        ids, mask, images = trajectory_ids(self.tokenizer, image, turns)
        with torch.no_grad():
            logps = episode_logprobs(self.model, self.tokenizer, ids, images).tolist()
        return Episode(
            token_ids=ids,
            logprobs=[lp if m else 0.0 for lp, m in zip(logps, mask, strict=True)],
            mask=mask,
            images=images,
            turns=[text for text, _ in turns],
            tool_calls=[ToolCallRecord(tool, {}, True, None, 0.0) for _, tool in turns if tool],
            prompt_length=len(self.tokenizer.prompt_ids(first_turn_messages())),
            stop_reason="answer",
            messages=first_turn_messages(),
        )

    def single_turn(self, image: Image.Image, text: str) -> Episode:
        """A paper-001 style sample: one model turn after `rft_fas_messages`."""
        messages = rft_fas_messages()
        prompt = self.tokenizer.prompt_ids(messages)
        ids = [*prompt, *self.tokenizer.encode(text), self.tokenizer.end_of_turn_id]
        with torch.no_grad():
            logps = episode_logprobs(self.model, self.tokenizer, ids, [image]).tolist()[len(prompt) :]
        completion = CompletionOut(
            token_ids=ids[len(prompt) :], logprobs=logps, finish_reason="stop", text=text
        )
        return single_turn_episode(prompt, completion, image, messages, self.tokenizer)

    def update_weights(self, state_dict) -> int:
        self.pushes.append(dict(state_dict))
        return len(self.pushes)


def arguments(tmp_path: Path, **overrides) -> GRPOConfig:
    settings = {
        "output_dir": str(tmp_path),
        "use_cpu": True,
        "num_generations": 2,
        "per_device_train_batch_size": 2,
        "max_steps": 1,
        "learning_rate": 1e-3,
        "weight_decay": 0.0,  # without decay, a changed parameter proves a non-zero policy gradient
        "loss_type": "grpo",
        "max_completion_length": 48,
        "gradient_checkpointing": False,
        "disable_dropout": True,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 1,
        "seed": 0,
        "bf16": False,  # TRL defaults to bf16 even on the CPU, where it autocasts; the tests compare float32
    }
    settings.update(overrides)
    return GRPOConfig(**settings)


def scripted_trainer(
    model_dir: Path,
    tmp_path: Path,
    callbacks: list | None = None,
    dataset: Dataset | None = None,
    **overrides,
) -> EpisodeGRPOTrainer:
    """A trainer on `dataset` (one spoof face by default) whose episodes ScriptedEpisodes writes."""
    model, processor = load_policy(model_dir)
    source = ScriptedEpisodes(model, ConversationTokenizer(processor, detect_arch(model_dir)))
    if dataset is None:
        dataset = Dataset.from_dict({"image": [face(1)], "label": ["spoof"]})
    return EpisodeGRPOTrainer(
        model,
        args=arguments(tmp_path, **overrides),
        train_dataset=dataset,
        processing_class=processor,
        episode_source=source,
        method="dt_grpo",
        reward_scorer=InProcessRewards(),
        callbacks=callbacks,
    )


@pytest.fixture(scope="module")
def qwen_dir(model_cache: Path) -> Path:
    from rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny", image_size=IMAGE_SIDE)


# -- the episode batch ------------------------------------------------------------------------------------


def test_loss_mask_is_exactly_the_model_tokens_and_every_image_is_expanded(qwen_dir: Path) -> None:
    model, processor = load_policy(qwen_dir)
    tokenizer = ConversationTokenizer(processor, "qwen2_5_vl")
    source = ScriptedEpisodes(model, tokenizer)
    episodes = [source.episode(face(1), ONE_TOOL), source.episode(face(2), THREE_TOOLS)]
    samples = [episode_tensors(e, tokenizer) for e in episodes]
    batch = collate_episodes(samples, pad_token_id=processor.tokenizer.pad_token_id)
    image_token = model.config.image_token_id
    tokens_per_image = (batch["image_grid_thw"].prod(dim=-1) // 4).tolist()  # 2x2 patches make one token
    for row, (episode, sample) in enumerate(zip(episodes, samples, strict=True)):
        length = len(sample.completion_ids)
        ids = batch["completion_ids"][row, :length]
        mask = batch["tool_mask"][row, :length].bool()
        # What the loss sees is exactly what the model wrote, turn by turn.
        assert tokenizer.decode(ids[mask].tolist()) == tokenizer.decode(model_token_ids(episode))
        # Every image of the episode is expanded: the dataset image in the prompt, each tool output after.
        assert sample.num_images == len(episode.images) == 1 + len(episode.tool_calls)
        first = sum(batch["num_images"][:row])
        counts = tokens_per_image[first : first + sample.num_images]
        assert int((sample.prompt_ids == image_token).sum()) == counts[0]
        assert int((ids == image_token).sum()) == sum(counts[1:]) > 0
        assert not (ids[mask] == image_token).any()
        # Sampling logprobs sit on the model's tokens only.
        assert (batch["sampling_per_token_logps"][row, :length][~mask] == 0).all()
    assert batch["num_images"] == [2, 4]
    assert batch["prompt_mask"].sum() == sum(len(s.prompt_ids) for s in samples)
    assert (batch["tool_mask"] * (1 - batch["completion_mask"]) == 0).all()  # padding is never trained on


def test_an_image_token_the_model_sampled_never_reaches_the_forward_pass(qwen_dir: Path) -> None:
    """A policy that writes <|image_pad|> or <|vision_start|> (a random one does) would give the model an image
    slot without an image, which its forward refuses: the token is replaced, and the episode trains on nothing."""
    model, processor = load_policy(qwen_dir)
    tokenizer = ConversationTokenizer(processor, "qwen2_5_vl")
    turns = [("<Spoof><|image_pad|><reason>x<|vision_start|></reason>", None), *ONE_TOOL[1:]]
    ids, mask, images = trajectory_ids(tokenizer, face(3), turns)
    episode = Episode(
        token_ids=ids,
        logprobs=[0.0] * len(ids),
        mask=mask,
        images=images,
        turns=[text for text, _ in turns],
        tool_calls=[ToolCallRecord("FFTTool", {}, True, None, 0.0)],
        prompt_length=len(tokenizer.prompt_ids(first_turn_messages())),
        stop_reason="answer",
    )
    sampled = [t for t, m in zip(episode.token_ids, episode.mask, strict=True) if m]
    assert set(sampled) & tokenizer.vision_ids  # the model really wrote image tokens
    sample = episode_tensors(episode, tokenizer)
    assert not sample.loss_mask.any()
    batch = collate_episodes([sample], pad_token_id=processor.tokenizer.pad_token_id)
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    with torch.no_grad():  # the image tokens match the image features again
        model(input_ids=ids, pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"])


class ControlWritingEpisodes(ScriptedEpisodes):
    """Episodes of a policy that writes control-token strings as text (tests/rollout_server/scripted_policy.py),
    sampled through the rollout server's episode loop, with the policy's own logprobs."""

    def episode(self, image: Image.Image, turns: list) -> Episode:
        episode = scripted_episode(self.tokenizer, image, image_size=IMAGE_SIDE)
        with torch.no_grad():
            logps = episode_logprobs(self.model, self.tokenizer, episode.token_ids, episode.images).tolist()
        episode.logprobs = [lp if m else 0.0 for lp, m in zip(logps, episode.mask, strict=True)]
        return episode


def control_writing_trainer(arch: str, model_cache: Path, tmp_path: Path) -> EpisodeGRPOTrainer:
    from rft.models.tiny import ensure_tiny_model

    trainer = scripted_trainer(ensure_tiny_model(model_cache, arch, "tiny", image_size=IMAGE_SIDE), tmp_path)
    source = trainer.episode_source
    trainer.episode_source = ControlWritingEpisodes(source.model, source.tokenizer)
    return trainer


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "internvl3"])
def test_a_policy_writing_control_strings_trains(arch: str, model_cache: Path, tmp_path: Path) -> None:
    """Tool calls named `<|vision_start|><|image_pad|><|vision_end|>` or `<IMG_CONTEXT><|im_start|>user`, whose
    errors echo the names back: every image token of the batch is an image's, and a step trains."""
    trainer = control_writing_trainer(arch, model_cache, tmp_path)
    (episodes,), _ = trainer.episode_source.episodes([face(1)], n=2)
    batch = trainer._episode_batch(episodes)
    image_token = trainer.model.config.image_token_id
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    expected = [trainer.conversation.expand_images(e.token_ids, e.images).input_ids for e in episodes]
    assert [int((row == image_token).sum()) for row in ids] == [
        int((e == image_token).sum()) for e in expected
    ]
    assert batch["tool_mask"].sum() > 0  # the policy's own tokens train
    trainer.train()
    (step,) = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert math.isfinite(step["loss"])


def test_an_image_token_in_a_scripted_turn_is_refused_before_the_forward_pass(qwen_dir: Path) -> None:
    """A scripted turn tokenised with special tokens parsed (an older rollout server echoing a tool call named
    `<|image_pad|>`) would crash the model's forward: the batch refuses it, saying why."""
    _, processor = load_policy(qwen_dir)
    tokenizer = ConversationTokenizer(processor, "qwen2_5_vl")
    ids, mask, images = trajectory_ids(tokenizer, face(3), ONE_TOOL)
    stray = tokenizer.encode("<tool_response>\nError: unknown tool '<|image_pad|>'\n</tool_response>")
    cut = len(ids) - mask[::-1].index(0)  # after the last scripted token, before the final answer
    episode = Episode(
        token_ids=ids[:cut] + stray + ids[cut:],
        logprobs=[0.0] * (len(ids) + len(stray)),
        mask=mask[:cut] + [0] * len(stray) + mask[cut:],
        images=images,
        turns=[text for text, _ in ONE_TOOL],
        tool_calls=[ToolCallRecord("FFTTool", {}, True, None, 0.0)],
        prompt_length=len(tokenizer.prompt_ids(first_turn_messages())),
        stop_reason="answer",
    )
    with pytest.raises(ConversationError, match=r"image token.*outside an image placeholder"):
        episode_tensors(episode, tokenizer)


def test_truncated_episodes_can_be_masked_out(qwen_dir: Path) -> None:
    model, processor = load_policy(qwen_dir)
    tokenizer = ConversationTokenizer(processor, "qwen2_5_vl")
    episode = ScriptedEpisodes(model, tokenizer).episode(face(1), ONE_TOOL)
    episode.stop_reason = "max_tokens"
    batch = collate_episodes([episode_tensors(episode, tokenizer)], pad_token_id=0, mask_truncated=True)
    assert batch["tool_mask"].sum() == 0
    assert collate_episodes([episode_tensors(episode, tokenizer)], pad_token_id=0)["tool_mask"].sum() > 0


# -- advantages and importance weights --------------------------------------------------------------------


def test_group_advantages_are_eq_9() -> None:
    columns = torch.tensor([[1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    weights = torch.tensor([0.1, 0.5, 0.4])
    scored = group_advantages(columns, weights, num_generations=2)
    rewards = torch.tensor([0.6, -0.4, 0.0, 0.0])
    torch.testing.assert_close(scored.rewards, rewards)
    std = torch.tensor([0.6, -0.4]).std()  # Bessel-corrected, as TRL's nanstd
    expected = torch.tensor([0.5 / (std + 1e-4), -0.5 / (std + 1e-4), 0.0, 0.0])
    torch.testing.assert_close(scored.advantages, expected)
    assert scored.std_is_zero.tolist() == [False, False, True, True]
    unscaled = group_advantages(columns, weights, num_generations=2, scale_rewards="none")
    torch.testing.assert_close(unscaled.advantages, torch.tensor([0.5, -0.5, 0.0, 0.0]))


def test_an_unscorable_completion_gets_no_advantage() -> None:
    columns = torch.tensor([[1.0], [float("nan")], [0.0]])
    scored = group_advantages(columns, torch.ones(1), num_generations=3)
    assert scored.advantages[1] == 0 and math.isnan(scored.rewards[1])
    assert scored.advantages[0] > 0 > scored.advantages[2]


def test_sampler_importance_weights_follow_trl_modes() -> None:
    trainer = torch.tensor([[-1.0, -1.0, -5.0], [-1.0, -0.5, 0.0]])
    sampler = torch.tensor([[-1.0, -2.0, 0.0], [-1.0, -1.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])
    token = sampler_importance_weights(
        trainer, sampler, mask, mode="token_truncate", clip_min=None, clip_max=2.0
    )
    torch.testing.assert_close(token, torch.tensor([[1.0, 2.0, 1.0], [1.0, math.exp(0.5), 1.0]]))
    sequence = sampler_importance_weights(
        trainer, sampler, mask, mode="sequence_mask", clip_min=None, clip_max=2.0
    )
    torch.testing.assert_close(sequence, torch.tensor([[0.0], [math.exp(0.5)]]))


@pytest.mark.parametrize(
    ("top_p", "kept"),
    [(1.0, 1.0), (0.7, 0.8), (0.5, 0.5), (0.1, 0.5)],  # probabilities 0.5, 0.3, 0.2; 0.1 keeps the top one
)
def test_nucleus_log_mass_is_what_vllms_top_p_keeps(top_p: float, kept: float) -> None:
    logits = torch.tensor([0.5, 0.3, 0.2]).log().expand(2, 3, 3)
    torch.testing.assert_close(nucleus_log_mass(logits, top_p), torch.full((2, 3), math.log(kept)))


def test_folding_weights_into_advantages_is_trls_weighted_clipped_loss() -> None:
    generator = torch.Generator().manual_seed(0)
    ratio = torch.exp(0.5 * torch.randn(3, 5, generator=generator))
    advantages = torch.randn(3, generator=generator)
    weights = torch.rand(3, 5, generator=generator) * 2
    clipped = ratio.clamp(0.8, 1.2)
    trl_loss = -torch.min(ratio * advantages[:, None], clipped * advantages[:, None]) * weights
    folded = token_advantages(advantages, weights, torch.ones(3, 5))
    torch.testing.assert_close(-torch.min(ratio * folded, clipped * folded), trl_loss)


# -- rewards and metrics ----------------------------------------------------------------------------------


def test_service_totals_must_match_the_trainers_weights() -> None:
    columns = torch.tensor([[1.0, 1.0, 0.2]])
    check_totals(columns, torch.tensor([0.1 + 0.5 + 0.08]), torch.tensor([0.1, 0.5, 0.4]))
    with pytest.raises(RewardMismatchError):
        check_totals(columns, torch.tensor([1.0 + 1.0 + 0.2]), torch.tensor([0.1, 0.5, 0.4]))


def test_episode_metrics_count_tools_per_episode() -> None:
    calls = [
        ToolCallRecord("FFTTool", {}, True, None, 0.0),
        ToolCallRecord(None, None, False, "bad json", 0.0),
        ToolCallRecord("FFTTool", {}, True, None, 0.0),
        ToolCallRecord("HOGTool", {}, True, None, 0.0),
    ]
    episodes = [
        Episode([1], [0.0], [0], [], ["a", "b", "c"], calls, 1, "answer"),
        Episode([1], [0.0], [0], [], ["a"], [], 1, "max_tokens"),
    ]
    summary = episode_metrics([summarize(e) for e in episodes])
    assert summary["tools/FFTTool/call_frequency"] == 1.0
    assert summary["tools/distinct_per_episode"] == 1.0  # FFT twice and HOG count 2 distinct; 0 in the other
    assert summary["tools/invalid/call_frequency"] == 0.5
    assert summary["tools/ZoomInTool/call_frequency"] == 0.0
    assert summary["tools/failure_frequency"] == 0.25
    assert summary["episodes/turns/mean"] == 2.0
    assert summary["episodes/stop/max_tokens"] == 0.5


@pytest.mark.parametrize(
    ("generation", "per_device", "given", "processes", "expected"),
    [
        (512, 8, None, 8, 8),  # paper 003 on 8 GPUs
        (512, 8, None, 1, 64),  # the same recipe on one GPU: derived, still one batch per step
        (6, 3, None, 2, 1),  # paper 001's batch of 6 on 2 GPUs
        (6, 6, None, 2, "micro-batches of grpo.per_device_train_batch_size \\(6\\) on each of 2"),
        (16, 8, 1, 1, "set it to 2 or null"),  # two optimizer steps per generation batch: off-policy
        (16, 4, 2, 1, "set it to 4 or null"),  # two generation batches per optimizer step
    ],
)
def test_one_optimizer_step_trains_on_one_generation_batch(
    generation, per_device, given, processes, expected
):
    def derive() -> int:
        return accumulation_steps(
            generation_batch_size=generation,
            per_device_train_batch_size=per_device,
            gradient_accumulation_steps=given,
            num_processes=processes,
        )

    if isinstance(expected, int):
        assert derive() == expected
    else:
        with pytest.raises(ConfigError, match=expected):
            derive()


# The papers' GRPO settings (paper 001 "Implementation details"; paper 003 Sec. 4.1), which the shipped
# recipes must keep: group size, completions per optimizer step, learning rate, KL, weight decay, and the
# paper-003 step and tool-call limits (paper 001 gives no step count; its recipe's is our choice).
PAPER_GRPO = {
    "rft_fas": {
        "method": "rft_fas",
        "num_generations": 6,
        "generation_batch_size": 6,
        "learning_rate": 5e-6,
        "beta": 0.04,
        "weight_decay": 0.0,
        "max_completion_length": 1200,
        "max_tool_calls": 0,
    },
    "dt_grpo": {
        "method": "dt_grpo",
        "num_generations": 8,
        "generation_batch_size": 512,
        "learning_rate": 1e-6,
        "beta": 0.0,
        "weight_decay": 0.05,
        "max_steps": 300,
        "max_tool_calls": 3,
    },
}


def grpo_recipes() -> list[Path]:
    """The shipped recipes that train with GRPO (the caption baseline's recipes have no `grpo` section)."""
    from rft.config import read_with_extends

    recipes = sorted((Path(__file__).parents[2] / "configs" / "recipes").glob("*.yaml"))
    return [recipe for recipe in recipes if "grpo" in read_with_extends(recipe)]


@pytest.mark.parametrize("recipe", grpo_recipes(), ids=lambda p: p.stem)
def test_shipped_recipes_keep_the_papers_settings(recipe: Path) -> None:
    from rft.config import read_with_extends

    grpo = read_with_extends(recipe)["grpo"]
    paper = PAPER_GRPO[grpo["method"]]
    assert {key: grpo[key] for key in paper} == paper


def test_paper_batches_give_one_generation_batch_per_optimizer_step() -> None:
    # Paper 003: 512 completions per step on 1 process x 64 per device, or 8 processes x 8 per device.
    assert (
        accumulation_steps(
            generation_batch_size=512,
            per_device_train_batch_size=64,
            gradient_accumulation_steps=None,
            num_processes=1,
        )
        == 8
    )
    assert (
        accumulation_steps(
            generation_batch_size=512,
            per_device_train_batch_size=8,
            gradient_accumulation_steps=None,
            num_processes=8,
        )
        == 8
    )
    # Paper 001: batch size 6, one group per step.
    assert (
        accumulation_steps(
            generation_batch_size=6,
            per_device_train_batch_size=6,
            gradient_accumulation_steps=None,
            num_processes=1,
        )
        == 1
    )
    with pytest.raises(ConfigError, match="micro-batches"):
        accumulation_steps(
            generation_batch_size=6,
            per_device_train_batch_size=4,
            gradient_accumulation_steps=None,
            num_processes=1,
        )


# -- the trainer on scripted episodes ---------------------------------------------------------------------


def test_unsupported_settings_are_refused(qwen_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedSetting, match="top_k"):
        scripted_trainer(qwen_dir, tmp_path, top_k=5)


def three_episodes(source: ScriptedEpisodes) -> list[Episode]:
    """One tool call, three tool calls, and paper 001's single turn: paper 001's prompt is shorter than
    paper 003's, so a batch of them is left-padded."""
    return [
        source.episode(face(1), ONE_TOOL),
        source.episode(face(2), THREE_TOOLS),
        source.single_turn(face(3), "<thinking>moire</thinking><answer>fake</answer>"),
    ]


def test_forward_pass_sees_every_image(qwen_dir: Path, tmp_path: Path) -> None:
    """The trainer's batched forward (TRL's, left-padded, images sliced per sample) gives each episode's
    logprobs as a single unpadded pass with all its images does; with a tool image swapped for another, the
    tokens after it get other logprobs, so the images really reach the model."""
    trainer = scripted_trainer(qwen_dir, tmp_path, num_generations=3, per_device_train_batch_size=3)
    source = trainer.episode_source
    episodes = three_episodes(source)
    batch = trainer._episode_batch(episodes)
    assert len(set(batch["prompt_mask"].sum(dim=1).tolist())) > 1
    with torch.no_grad():
        batched = trainer._policy_logps(trainer.model, batch)
    for row, episode in enumerate(episodes):
        alone = torch.tensor(episode.logprobs)[torch.tensor(episode.mask).bool()]
        mask = batch["tool_mask"][row].bool()
        torch.testing.assert_close(batched[row][mask], alone, atol=1e-4, rtol=0)
    episode = episodes[0]
    swapped = [episode.images[0], face(99).resize(episode.images[1].size)]
    with torch.no_grad():
        other = episode_logprobs(trainer.model, source.tokenizer, episode.token_ids, swapped)
    model_tokens = torch.tensor(episode.mask).bool()
    assert (other[model_tokens] - torch.tensor(episode.logprobs)[model_tokens]).abs().max() > 1e-3


def test_sampler_terms_logprobs_at_top_p_come_from_one_plain_forward(qwen_dir: Path, tmp_path: Path) -> None:
    """With top_p < 1 the logprobs and the nucleus's kept mass come from one plain forward, one episode at a
    time: its logprobs are the fused head's (batched, at the trainer's temperature) on every completion token,
    and the sampler's-terms logprobs are those raised by the mass the nucleus dropped, wherever it dropped any."""
    trainer = scripted_trainer(
        qwen_dir, tmp_path, num_generations=3, per_device_train_batch_size=3, temperature=0.7, top_p=0.6
    )
    episodes = three_episodes(trainer.episode_source)
    batch = trainer._episode_batch(episodes)
    kept = partial(nucleus_log_mass, top_p=0.6)
    with torch.no_grad():
        fused = trainer._policy_logps(trainer.model, batch)
        plain, log_kept = per_token_logps_and_term(
            trainer, trainer.model, kept, **trainer._forward_inputs(batch, 1)
        )
        as_sampled = trainer._sampler_terms_logps(batch, old=None)
    scored = batch["completion_mask"].bool()
    torch.testing.assert_close(plain[scored], fused[scored], atol=1e-4, rtol=0)
    torch.testing.assert_close(as_sampled[scored], (plain - log_kept)[scored])
    assert log_kept[scored].max() <= 0
    assert log_kept[scored].min() < -0.01


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "internvl3"])
def test_tokens_the_model_did_not_generate_get_zero_gradient(
    arch: str, model_cache: Path, tmp_path: Path
) -> None:
    """d loss / d h_t, h_t the last hidden state that scores token t + 1, is exactly 0 wherever token t + 1
    is not the model's (prompt, scripted turn, tool response, tool image) and non-zero on the model's tokens."""
    from rft.models.tiny import ensure_tiny_model

    trainer = scripted_trainer(ensure_tiny_model(model_cache, arch, "tiny", image_size=IMAGE_SIDE), tmp_path)
    model = trainer.model
    model.train()
    batch = trainer.generate_and_score([{"image": face(1), "label": "spoof"}] * 2)
    batch["advantages"] = torch.tensor([1.0, -0.5])  # both signs, whatever the rewards were
    trainer.current_gradient_accumulation_steps = 1
    hidden: list[torch.Tensor] = []

    def keep_hidden(_module, _inputs, output):
        output.last_hidden_state.retain_grad()
        hidden.append(output.last_hidden_state)

    handle = model.base_model.register_forward_hook(keep_hidden)
    try:
        trainer.compute_loss(model, batch).backward()
    finally:
        handle.remove()
    grad = hidden[-1].grad.norm(dim=-1)  # (B, P + C)
    prompt = batch["prompt_ids"].size(1)
    completion = batch["completion_ids"].size(1)
    scores_completion = grad[:, prompt - 1 : prompt - 1 + completion]  # h_{P-1+k} scores completion token k
    trained = (batch["completion_mask"] * batch["tool_mask"]).bool()
    assert (grad[:, : prompt - 1] == 0).all()
    assert (scores_completion[~trained] == 0).all()
    assert (scores_completion[trained] > 0).all()
    image_token = model.config.image_token_id
    assert ((batch["completion_ids"] == image_token) & ~trained).any(), "no tool image in the completion"


def test_kl_to_the_reference_when_beta_is_set(qwen_dir: Path, tmp_path: Path) -> None:
    """Paper 001's beta * KL: the reference's logprobs come with the batch and TRL logs `kl`."""
    trainer = scripted_trainer(qwen_dir, tmp_path, beta=0.04)
    trainer.model.train()
    batch = trainer.generate_and_score([{"image": face(1), "label": "spoof"}] * 2)
    trained = (batch["completion_mask"] * batch["tool_mask"]).bool()
    # Before any update the reference is the policy.
    with torch.no_grad():
        policy = trainer._policy_logps(trainer.model, batch)
    torch.testing.assert_close(batch["ref_per_token_logps"][trained], policy[trained])
    trainer.current_gradient_accumulation_steps = 1
    trainer.compute_loss(trainer.model, batch).backward()
    assert metrics(trainer, "train")["kl"] == [pytest.approx(0.0, abs=1e-6)]


@pytest.mark.parametrize(("num_iterations", "kept"), [(1, False), (2, True)])
def test_old_logprobs_come_with_the_batch_only_when_it_spans_optimizer_steps(
    qwen_dir: Path, tmp_path: Path, num_iterations: int, kept: bool
) -> None:
    """With one optimizer step per generation batch TRL's loss takes its own detached logprobs as
    pi_theta_old (a ratio of exactly 1); trained on again after an update (num_iterations 2), the batch
    carries pi_theta_old, from the fused head as the loss computes it."""
    trainer = scripted_trainer(qwen_dir, tmp_path, num_iterations=num_iterations)
    batch = trainer.generate_and_score([{"image": face(1), "label": "spoof"}] * 2)
    assert ("old_per_token_logps" in batch) is kept
    if kept:
        with torch.no_grad():
            fused = trainer._policy_logps(trainer.model, batch)
        torch.testing.assert_close(batch["old_per_token_logps"], fused)


class OneTrajectory(ScriptedEpisodes):
    """Every episode the same trajectory: equal rewards, so every advantage is 0."""

    def episodes(self, images, *, n, sampling=None):
        return [[self.episode(image, ONE_TOOL) for _ in range(n)] for image in images], len(self.pushes)


def test_the_kl_term_pulls_the_policy_back_to_the_reference(qwen_dir: Path, tmp_path: Path) -> None:
    """With beta > 0 and nothing to reward (every advantage 0) the only gradient is the KL term's: a policy
    moved away from the reference (the model on disk, which TRL loads) comes back towards it, measured on the
    episode's model tokens by the reference loaded separately: 0.160 -> 0.072 in 6 steps (2026-12-07).
    Checked by breaking it once: with the reference logprobs taken from the policy itself the policy does not
    move (0.160 -> 0.160), with them mirrored about the policy's (the KL's sign flipped) it runs away
    (0.160 -> 1.682)."""
    model, processor = load_policy(qwen_dir)
    reference, _ = load_policy(qwen_dir)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
    source = OneTrajectory(model, ConversationTokenizer(processor, detect_arch(qwen_dir)))
    trainer = EpisodeGRPOTrainer(
        model,
        args=arguments(tmp_path, beta=1.0, max_steps=KL_STEPS, learning_rate=1e-3),
        train_dataset=Dataset.from_dict({"image": [face(1)], "label": ["spoof"]}),
        processing_class=processor,
        episode_source=source,
        method="dt_grpo",
        reward_scorer=InProcessRewards(),
    )
    episode = source.episode(face(1), ONE_TOOL)
    model_tokens = torch.tensor(episode.mask).bool()

    def distance() -> float:
        with torch.no_grad():
            policy = episode_logprobs(model, source.tokenizer, episode.token_ids, episode.images)
            anchor = episode_logprobs(reference, source.tokenizer, episode.token_ids, episode.images)
        return float((policy - anchor)[model_tokens].abs().mean())

    before = distance()
    trainer.train()
    after = distance()
    steps = [entry for entry in trainer.state.log_history if "kl" in entry]
    assert len(steps) == KL_STEPS
    assert all(entry["reward_std"] == 0 for entry in steps)  # nothing but the KL term trained
    assert before > 0.05
    assert after < 0.6 * before, f"mean |log pi - log pi_ref| {before:.4f} -> {after:.4f}"


def test_a_target_evaluation_mid_run_leaves_the_steps_timing_and_metrics_alone(
    qwen_dir: Path, tmp_path: Path
) -> None:
    """An evaluation at the end of step 1 starts after that step's time is recorded and logs an entry of its
    own; step 1 still logs its entry, with its rewards (TRL's `log` flushed them into the evaluation's entry,
    and any `log` call reset the step's `should_log`)."""
    update_times_seen: list[list[float]] = []

    def evaluate(trainer: EpisodeGRPOTrainer) -> dict:
        update_times_seen.append(list(metrics(trainer, "train")["time/update_s"]))
        sample = {"id": "face-0", "label": "live", "scores": {"fast": 0.2}, "image": "images/street/a.png"}
        return {"street": {"fast": {"overall": {"hter": 0.25, "auc": 0.75}}, "samples": [sample]}}

    evaluation = TargetEvaluation(evaluate=evaluate, every=1, out_dir=tmp_path / "eval")
    trainer = scripted_trainer(qwen_dir, tmp_path, callbacks=[evaluation], max_steps=2)
    evaluation.attach(trainer)
    trainer.train()

    assert len(update_times_seen) == 1 and len(update_times_seen[0]) == 1  # step 1 was timed already
    history = trainer.state.log_history
    steps = [entry for entry in history if "loss" in entry]
    assert [entry["step"] for entry in steps] == [1, 2]
    for entry in steps:
        assert "reward" in entry and "time/update_s" in entry and "rewards/r_fast/mean" in entry, entry
    (target,) = [entry for entry in history if "target/street/fast/hter" in entry]
    assert target["step"] == 1 and target["target/street/fast/auc"] == 0.75
    assert not any(key.startswith(("reward", "time/")) for key in target), target
    assert (tmp_path / "eval" / "eval_step_000001.json").is_file()
    # The per-sample rows go to their own file (the dashboard's evaluation view), not into the report.
    assert "samples" not in json.loads((tmp_path / "eval" / "eval_step_000001.json").read_text())["street"]
    (line,) = (tmp_path / "eval" / "samples_step_000001.jsonl").read_text().splitlines()
    assert json.loads(line)["scores"] == {"fast": 0.2}


def test_reward_service_and_trl_reward_functions_agree(qwen_dir: Path, tmp_path: Path) -> None:
    trainer = scripted_trainer(qwen_dir, tmp_path, num_generations=3, per_device_train_batch_size=3)
    (episodes,), _ = trainer.episode_source.episodes([face(1)], n=3)
    labels = ["spoof"] * 3
    service, components = trainer._score(episodes, labels)
    trainer.reward_client = None
    local, _ = trainer._score(episodes, labels)
    torch.testing.assert_close(service, local)
    # ONE_TOOL right with FFT; THREE_TOOLS right with FFT, LBP, edges; WRONG_ANSWER wrong in the end.
    torch.testing.assert_close(service, torch.tensor([[1.0, 1.0, 0.2], [1.0, 1.0, 0.6], [1.0, 0.0, 0.0]]))
    assert components["tool_diversity"].tolist() == pytest.approx([0.2, 0.6, 0.2])


def test_peft_weights_are_merged_under_the_base_names(qwen_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from rft.trainers.trl_adapter import DistributedBackend

    model, _ = load_policy(qwen_dir)
    base = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, lora)
    accelerator = type("Accelerator", (), {"state": type("State", (), {"deepspeed_plugin": None})()})()
    weights = full_weights(peft_model, DistributedBackend(accelerator), keep=True)
    assert set(weights) == set(base)
    merged = peft_model.merge_and_unload().state_dict()
    assert all(torch.equal(weights[name], merged[name]) for name in base)
    changed = {name for name in base if not torch.equal(weights[name], base[name])}
    assert changed and all(".q_proj." in name or ".v_proj." in name for name in changed)


# -- against a real rollout server ------------------------------------------------------------------------


def _rollout_helpers():
    spec = importlib.util.spec_from_file_location("rollout_server_conftest", ROLLOUT_TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def protocol_dir(model_cache: Path) -> Path:
    from protocol_model import train_protocol_model

    from rft.models.tiny import ensure_tiny_model

    base = ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny", image_size=IMAGE_SIDE)
    return train_protocol_model(base, model_cache / f"protocol-qwen2_5_vl-{IMAGE_SIDE}")


@pytest.fixture(scope="module")
def rollout_url(protocol_dir: Path) -> Iterator[str]:
    helpers = _rollout_helpers()
    port = helpers.free_port()
    proc = helpers.start_server(protocol_dir, port, "--image-size", str(IMAGE_SIDE))
    url = f"http://127.0.0.1:{port}"
    try:
        helpers.wait_until_ready(url, proc)
        yield url
    finally:
        helpers.stop_server(proc)


def server_version(url: str) -> int:
    return requests.get(url + "/readyz", timeout=10).json()["weights_version"]


@pytest.mark.slow  # the server takes 1-2 minutes to start on the CPU
def test_two_dt_grpo_steps_against_the_rollout_server(
    rollout_url: str, protocol_dir: Path, tmp_path: Path
) -> None:
    from rollout_server.client import RolloutClient

    model, processor = load_policy(protocol_dir)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    version = server_version(rollout_url)
    # G = 8 as in paper 003: with the protocol model about a quarter of the episodes break the format, so
    # some group of each step differs in reward. Each step gets its own two images: the server reuses a
    # cached image embedding after a weight update and then fails (reported; docs/TRAINING.md).
    dataset = Dataset.from_dict({"image": [face(i) for i in range(1, 5)], "label": ["spoof", "live"] * 2})
    trainer = EpisodeGRPOTrainer(
        model,
        args=arguments(
            tmp_path,
            num_generations=8,
            per_device_train_batch_size=16,
            max_steps=2,
            log_completions=True,
            num_completions_to_print=1,
        ),
        train_dataset=dataset,
        processing_class=processor,
        episode_source=RolloutClient(rollout_url, token=_rollout_helpers().TOKEN),
        method="dt_grpo",
        reward_scorer=InProcessRewards(),
    )
    trainer.train()
    steps = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(steps) == 2 and all(math.isfinite(entry["loss"]) for entry in steps)
    # Each step pushed the weights before its rollouts, and the rollouts came from them.
    assert server_version(rollout_url) == version + 2
    assert [entry["rollout/weights_version"] for entry in steps] == [version + 1, version + 2]
    assert any(entry["frac_reward_zero_std"] < 1 for entry in steps), "every group had equal rewards"
    changed = [name for name, p in model.named_parameters() if not torch.equal(before[name], p)]
    assert any("visual" in name for name in changed) and any("lm_head" in name for name in changed)
    for key in (
        "episodes/turns/mean",
        "tools/FFTTool/call_frequency",
        "completions/mean_length",
        "entropy",
        "clip_ratio/region_mean",
        "sampling/kl",
        "time/rollout_s",
        "time/reward_s",
        "time/update_s",
        "reward_components/tool_diversity/mean",
    ):
        assert all(key in entry for entry in steps), key
    # The logged reward components are the reward functions applied to the logged episodes.
    funcs = {"r_fast": trl_rewards.r_fast, "r_rsn": trl_rewards.r_rsn, "r_tool": trl_rewards.r_tool}
    tables = sorted((tmp_path / "completions").glob("completions_*.parquet"))
    assert len(tables) == 2
    for table, entry in zip(tables, steps, strict=True):
        logged = pd.read_parquet(table)
        assert len(logged) == 16
        turns = [json.loads(t) for t in logged["episode_turns"]]
        for text, episode_turns in zip(logged["completion"], turns, strict=True):
            assert all(turn in text for turn in episode_turns)
        for name, func in funcs.items():
            expected = func(episode_turns=turns, label=list(logged["label"]))
            assert logged[name].tolist() == pytest.approx(expected), name
            assert entry[f"rewards/{name}/mean"] == pytest.approx(sum(expected) / len(expected), abs=1e-6)


def one_served_group(
    rollout_url: str, protocol_dir: Path, tmp_path: Path, image: int, method: str, *, group: int, **settings
) -> tuple[EpisodeGRPOTrainer, dict]:
    """One group of `face(image)` sampled by the rollout server and scored, before any update. Each test
    passes an image the server has not seen yet (see test_two_dt_grpo_steps_against_the_rollout_server)."""
    from rollout_server.client import RolloutClient

    model, processor = load_policy(protocol_dir)
    trainer = EpisodeGRPOTrainer(
        model,
        args=arguments(tmp_path, num_generations=group, per_device_train_batch_size=group, **settings),
        train_dataset=Dataset.from_dict({"image": [face(image)], "label": ["spoof"]}),
        processing_class=processor,
        episode_source=RolloutClient(rollout_url, token=_rollout_helpers().TOKEN),
        method=method,
        reward_scorer=InProcessRewards(),
    )
    model.train()
    return trainer, trainer.generate_and_score([{"image": face(image), "label": "spoof"}] * group)


@pytest.mark.slow
def test_single_turn_samples_score_with_paper_001_rewards(
    rollout_url: str, protocol_dir: Path, tmp_path: Path
) -> None:
    """Paper 001's path: `samples` through the same batch, one model turn per completion."""
    trainer, batch = one_served_group(rollout_url, protocol_dir, tmp_path, 7, "rft_fas", group=3)
    assert trainer.reward_func_names == ["r_format", "r_cls", "r_res"]
    assert batch["num_images"] == [1, 1, 1]
    trained = batch["completion_mask"] * batch["tool_mask"]
    assert (trained == batch["completion_mask"]).all()  # a single turn: every completion token is the model's
    logged = metrics(trainer, "train")
    assert logged["episodes/turns/mean"] == [1.0]
    assert logged["sampling/sampling_logp_difference/mean"][0] < 0.05


@pytest.mark.slow
def test_top_p_sampling_is_weighed_on_the_samplers_terms(
    rollout_url: str, protocol_dir: Path, tmp_path: Path
) -> None:
    """With top_p < 1 vLLM reports each logprob renormalised over the tokens its nucleus kept. Compared
    with the trainer's full-vocabulary logprobs, every token's ratio was the kept mass and the sequence's
    importance weight near 0; compared on the sampler's terms, an unchanged policy's weights are near 1."""
    trainer, batch = one_served_group(
        rollout_url, protocol_dir, tmp_path, 9, "dt_grpo", group=4, top_p=0.5, temperature=2.0
    )
    assert batch["completion_mask"].sum() > 40
    logged = metrics(trainer, "train")
    assert logged["sampling/sampling_logp_difference/mean"][0] < 0.02
    assert 0.8 < logged["sampling/importance_sampling_ratio/mean"][0] < 1.25


# -- several processes ------------------------------------------------------------------------------------

TWO_PROCESS_RUN = """\
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from datasets import Dataset
import test_grpo as T
from rft.models.conversation import ConversationTokenizer
from rft.models.loading import load_policy
from rft.trainers.grpo import EpisodeGRPOTrainer
from reward_service import InProcessRewards

model_dir, out = Path({model_dir!r}), Path({out!r})
model, processor = load_policy(model_dir)
# Loaded before the arguments switch ZeRO-3 on: the source's own copy stays whole, so the main process can run
# it alone (a partitioned model would wait for the other rank's gathers).
sampler_model, _ = load_policy(model_dir)
initial = {{name: p.detach().clone() for name, p in model.named_parameters()}}
args = T.arguments(out, num_generations=2, per_device_train_batch_size=2, max_steps=2)
dataset = Dataset.from_dict({{"image": [T.face(i) for i in range(4)], "label": ["spoof", "live"] * 2}})
trainer = EpisodeGRPOTrainer(model, args=args, train_dataset=dataset, processing_class=processor,
                             episode_source=None, method="dt_grpo", reward_scorer=InProcessRewards())
if trainer.accelerator.is_main_process:
    trainer.episode_source = T.ScriptedEpisodes(sampler_model, ConversationTokenizer(processor, "qwen2_5_vl"))
trainer.train()
if trainer.accelerator.is_main_process:
    first, second = trainer.episode_source.pushes
    steps = [e for e in trainer.state.log_history if "loss" in e]
    (out / "result.json").write_text(json.dumps({{
        "names": sorted(first) == sorted(initial),
        "first_is_initial": all(torch.equal(first[n], initial[n]) for n in initial),
        "second_changed": sum(not torch.equal(second[n], initial[n]) for n in initial),
        "steps_with_episodes": [e["episodes/turns/mean"] > 0 for e in steps],
    }}))
"""


@pytest.mark.slow  # two processes under DeepSpeed, about a minute of CPU
def test_two_processes_under_deepspeed_zero3(qwen_dir: Path, tmp_path: Path, launch_on_two_cpus) -> None:
    """Only the main process samples; the rollouts reach both ranks; under ZeRO-3 the pushed weights are
    gathered whole: the first push is the initial model, the second the updated one."""
    script = TWO_PROCESS_RUN.format(
        tests=str(Path(__file__).parent), model_dir=str(qwen_dir), out=str(tmp_path)
    )
    result = launch_on_two_cpus("zero3", script)  # deploy/accelerate/zero3_8gpu.yaml on 2 CPUs
    assert result["names"] and result["first_is_initial"]
    assert result["second_changed"] > 0
    assert result["steps_with_episodes"] == [True, True]


def test_balanced_classes_reach_the_trainer_one_live_and_one_spoof_per_batch(
    qwen_dir: Path, tmp_path: Path
) -> None:
    """The order balanced_examples gives survives TRL's sampler (its shuffle off, as training_arguments sets
    it): every generation batch of two images holds one of each class. With TRL's shuffle on, a random order
    balances all ten batches with probability about 0.005."""
    labels = ["live", "spoof"] * 3 + ["spoof"] * 7 + ["live"] * 7
    examples = Dataset.from_dict({"image": [face(i) for i in range(len(labels))], "label": labels})
    trainer = scripted_trainer(
        qwen_dir,
        tmp_path,
        dataset=balanced_examples(examples, images_per_batch=2, seed=0),
        per_device_train_batch_size=4,
        generation_batch_size=4,
        shuffle_dataset=False,
        max_steps=10,
    )
    batches = [batch for batch, _ in zip(trainer.get_train_dataloader(), range(10), strict=False)]
    assert len(batches) == 10
    for batch in batches:
        assert sorted(row["label"] for row in batch) == ["live", "live", "spoof", "spoof"]

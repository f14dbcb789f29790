"""Target-domain evaluation (rft.eval.target): where the final answer is scored, the score of one full forward
with every image of the episode, the fast and final reports, and scores that follow the image, not a constant.

Episodes come from a scripted source that replays paper-003 trajectories (tests/rollout_server/
protocol_model.py, tools run for real) or paper-001 completions, so no vLLM is needed. The slow test runs
the evaluation in two processes under DeepSpeed ZeRO-3 and compares it with one process.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from datasets import Dataset
from PIL import Image
from torch.utils.hooks import RemovableHandle

from rft.eval.report import compute_report
from rft.eval.scoring import FAST_ANSWER_CLASSES
from rft.eval.target import (
    FinalPrefix,
    answer_probabilities,
    class_continuations,
    episode_fast_answer_messages,
    equal_shard,
    evaluate_targets,
    fast_answer_scores,
    final_answer_prefix,
    flatten_metrics,
    last_model_turn_start,
    subsample,
    unshard,
)
from rft.methods import RFT_FAS_FINAL_CLASSES, TAR_FAS_FINAL_CLASSES
from rft.models.conversation import ConversationTokenizer
from rft.models.loading import load_policy
from rft.prompts.episodes import first_turn_messages
from rft.prompts.rft_fas import rft_fas_messages
from rft.rollout.episode import Episode, ToolCallRecord, single_turn_episode
from rft.rollout.sampling import CompletionOut, SampleGroup, SampleResponse
from rft.tools import TOOL_NAMES

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rollout_server"))
from protocol_model import CALL, FAST, ONE_TOOL, protocol_image, trajectory_ids

IMAGE_SIDE = 56
ARCH = "qwen2_5_vl"
MALFORMED = [(FAST, None), ("<think>cannot tell</think>", None)]
# The second call is past a limit of one: the server stops without running it.
TOOL_LIMIT = [(FAST, None), (CALL, "FFTTool"), (CALL, None)]
ANSWERED_001 = "<thinking>flat print texture</thinking><answer>fake</answer>"
UNANSWERED_001 = "<thinking>hard to say</thinking>"
VERSION = 7


# Two cores shared with other jobs: OpenMP threads spinning against each other slow every step.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def qwen_dir(model_cache: Path) -> Path:
    from rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model(model_cache, ARCH, "tiny", image_size=IMAGE_SIDE)


Policy = tuple[torch.nn.Module, Any, ConversationTokenizer]


@pytest.fixture(scope="module")
def policy_of(model_cache: Path) -> Callable[[str], Policy]:
    """The tiny policy of an architecture (model, processor, tokenizer), loaded once per module."""
    from rft.models.tiny import ensure_tiny_model

    loaded: dict[str, Policy] = {}

    def get(arch: str) -> Policy:
        if arch not in loaded:
            model, processor = load_policy(
                ensure_tiny_model(model_cache, arch, "tiny", image_size=IMAGE_SIDE)
            )
            loaded[arch] = (model, processor, ConversationTokenizer(processor, arch))
        return loaded[arch]

    return get


@pytest.fixture
def policy(policy_of: Callable[[str], Policy]) -> Policy:
    return policy_of(ARCH)


def face(seed: int) -> Image.Image:
    return protocol_image(seed, IMAGE_SIDE)


def lit_face(seed: int, spoof: bool) -> Image.Image:
    """A bright image for a spoof, a dark one for a live face."""
    rng = np.random.default_rng(seed)
    low = 200 if spoof else 0
    return Image.fromarray(rng.integers(low, low + 56, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8))


def target_dataset(n: int, image: Callable[[int, bool], Image.Image] | None = None) -> Dataset:
    """n faces, live and spoof in turn, with the columns of rft.data.schema that the evaluation reads."""
    labels = [i % 2 for i in range(n)]
    make = image or (lambda seed, spoof: face(seed))
    return Dataset.from_dict(
        {
            "id": [f"face-{i}" for i in range(n)],
            "image": [make(i, bool(y)) for i, y in enumerate(labels)],
            "label": labels,
            "spoof_type": ["print" if y else "live" for y in labels],
        }
    )


def scripted_episode(
    tokenizer: ConversationTokenizer, image: Image.Image, turns: list, stop_reason: str = "answer"
) -> Episode:
    ids, mask, images = trajectory_ids(tokenizer, image, turns)
    return Episode(
        token_ids=ids,
        logprobs=[0.0] * len(ids),
        mask=mask,
        images=images,
        turns=[text for text, _ in turns],
        tool_calls=[ToolCallRecord(tool, {}, True, None, 0.0) for _, tool in turns[1:-1] if tool],
        prompt_length=len(tokenizer.prompt_ids(first_turn_messages())),
        stop_reason=stop_reason,
        messages=first_turn_messages(),
    )


class ScriptedSource:
    """An episode source without vLLM. Episode k (counted over all requests) answers when `answers(k)`:
    paper 003 replays ONE_TOOL (else MALFORMED), paper 001 writes ANSWERED_001 (else UNANSWERED_001)."""

    def __init__(self, tokenizer: ConversationTokenizer, answers: Callable[[int], bool] = lambda k: True):
        self.tokenizer = tokenizer
        self.answers = answers
        self.served = 0
        self.requests: list[dict] = []

    def _next_answers(self) -> bool:
        answered = self.answers(self.served)
        self.served += 1
        return answered

    def episodes(self, images, *, n, sampling=None):
        self.requests.append({"kind": "episodes", "n": n, "images": len(images), "sampling": sampling})
        groups = []
        for image in images:
            answered = self._next_answers()
            turns, stop = (ONE_TOOL, "answer") if answered else (MALFORMED, "malformed")
            groups.append([scripted_episode(self.tokenizer, image, turns, stop) for _ in range(n)])
        return groups, VERSION

    def samples(self, messages, images, *, n, sampling=None):
        self.requests.append({"kind": "samples", "n": n, "images": len(images), "sampling": sampling})
        prompt = self.tokenizer.prompt_ids(messages)
        groups = []
        for _ in images:
            text = ANSWERED_001 if self._next_answers() else UNANSWERED_001
            ids = [*self.tokenizer.encode(text), self.tokenizer.end_of_turn_id]
            completion = CompletionOut(
                token_ids=ids, logprobs=[0.0] * len(ids), finish_reason="stop", text=text
            )
            groups.append(SampleGroup(prompt_ids=prompt, completions=[completion] * n))
        return SampleResponse(groups=groups, weights_version=VERSION)


class BrightMeansSpoof(torch.nn.Module):
    """The policy with its class-token logits rigged: the spoof tokens ("Spoof" of "<Spoof>", "fake") gain
    30 and the live ones lose 30 when the row's first image (the dataset face) is bright, and the reverse
    when it is dark (`sign` -1 swaps the two). A score that follows the image gets AUC 1 on `lit_face`
    data; a constant one gets 0.5."""

    def __init__(self, model: torch.nn.Module, tokenizer: ConversationTokenizer, sign: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.sign = sign
        encode = tokenizer.encode
        self.spoof_ids = [i for i in encode("<Spoof>") if i not in encode("<Real>")] + encode("fake")
        self.live_ids = [i for i in encode("<Real>") if i not in encode("<Spoof>")] + encode("real")
        self.vision_start = model.config.vision_start_token_id

    def forward(self, *, input_ids, pixel_values, image_grid_thw, **kwargs):
        out = self.model(
            input_ids=input_ids, pixel_values=pixel_values, image_grid_thw=image_grid_thw, **kwargs
        )
        brightness = torch.stack([p.mean() for p in pixel_values.split(image_grid_thw.prod(-1).tolist())])
        per_row = (input_ids == self.vision_start).sum(-1)
        sign = self.sign * brightness[per_row.cumsum(0) - per_row].sign()[:, None]
        logits = out.logits.clone()
        logits[:, :, self.spoof_ids] += 30 * sign[..., None]
        logits[:, :, self.live_ids] -= 30 * sign[..., None]
        out.logits = logits
        return out


def count_forwards(model: torch.nn.Module) -> tuple[list[int], RemovableHandle]:
    """A counter of `model`'s forward calls, and the hook's handle to remove it."""
    calls = [0]
    handle = model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls, handle


# -- where the final answer is scored ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer_turn",
    [
        "<think>periodic peaks</think><answer><Spoof></answer>",
        "<think>I will write <answer> last</think><answer><Real></answer>",
    ],
)
def test_the_prefix_stops_right_after_the_last_answer_tag(policy, answer_turn: str) -> None:
    _, _, tokenizer = policy
    turns = [*ONE_TOOL[:-1], (answer_turn, None)]
    episode = scripted_episode(tokenizer, face(1), turns)
    start = last_model_turn_start(episode.mask)
    assert episode.mask[start - 1] == 0 and all(episode.mask[start:])
    prefix, forced = final_answer_prefix(episode, tokenizer)
    assert not forced
    assert prefix.ids == episode.token_ids[:start]
    assert prefix.text == answer_turn[: answer_turn.rindex("<answer>")] + "<answer>"
    assert "<Spoof>" not in prefix.text and "<Real>" not in prefix.text  # the model's class is never in it
    assert len(prefix.images) == 2


def test_each_class_is_scored_as_the_model_would_write_it(policy) -> None:
    """The two answers are tokenised whole (the tag's ">" merges with the next "<" in byte-level BPE) and
    split where they differ: scoring "<Spoof>" tokenised alone ends in a ">" the model never writes there,
    which decided (and inverted) the scores of trained models."""
    _, _, tokenizer = policy
    episode = scripted_episode(tokenizer, face(1), ONE_TOOL)
    prefix, _ = final_answer_prefix(episode, tokenizer)
    shared, (live, spoof) = class_continuations(tokenizer, prefix, TAR_FAS_FINAL_CLASSES)
    assert shared + spoof == prefix.ids + tokenizer.encode(prefix.text + "<Spoof></answer>")
    assert shared + live == prefix.ids + tokenizer.encode(prefix.text + "<Real></answer>")
    assert live[0] != spoof[0]  # the continuations start where the answers differ


class MergingTokenizer:
    """A byte-level BPE's behaviour at a tag boundary, reduced to one rule: "><" is one token. The tiny
    tokenizer holds the tags as added tokens and never merges them; Qwen's and InternVL's BPE do."""

    def encode(self, text: str) -> list[int]:
        return [1000 if piece == "><" else ord(piece) for piece in re.findall(r"><|.", text, re.DOTALL)]


def test_an_answer_that_merges_with_its_tag_is_split_where_the_whole_texts_differ() -> None:
    tokenizer = MergingTokenizer()
    assert tokenizer.encode("<answer><Spoof>") != tokenizer.encode("<answer>") + tokenizer.encode("<Spoof>")
    prefix = FinalPrefix(ids=[7], text="<answer>", images=[])
    shared, (live, spoof) = class_continuations(tokenizer, prefix, ("<Real>", "<Spoof>"))
    assert shared == [7, *tokenizer.encode("<answer><")]  # the merged "><", which "<Spoof>" alone never gives
    assert [*shared[1:], *spoof] == tokenizer.encode("<answer><Spoof>")
    assert [*shared[1:], *live] == tokenizer.encode("<answer><Real>")


@pytest.mark.parametrize(("turns", "stop"), [(MALFORMED, "malformed"), (TOOL_LIMIT, "tool_limit")])
def test_an_episode_without_an_answer_is_forced_to_answer(policy, turns: list, stop: str) -> None:
    _, _, tokenizer = policy
    episode = scripted_episode(tokenizer, face(2), turns, stop)
    prefix, forced = final_answer_prefix(episode, tokenizer)
    assert forced
    start = last_model_turn_start(episode.mask)
    assert (prefix.ids, prefix.text) == (episode.token_ids[:start], "<answer>")
    # A turn cut by max_tokens right after the tag is not forced: the model opened its answer.
    episode.turns[-1] = "<think>periodic peaks</think><answer>"
    prefix, forced = final_answer_prefix(episode, tokenizer)
    assert not forced and prefix.text == "<think>periodic peaks</think><answer>"


def test_a_full_context_after_a_tool_call_is_forced_without_the_tools_image(policy) -> None:
    """The server stops with "context" when the tool's image leaves no room for another turn: the episode
    ends with that image, after its last model turn. The forced answer replaces the tool-call turn, so the
    prefix holds the face alone, and the answer is scored (it raised a placeholder/image mismatch before)."""
    model, _, tokenizer = policy
    full = scripted_episode(tokenizer, face(5), [(FAST, None), (CALL, "FFTTool"), ("x", None)])
    cut = len(tokenizer.encode("x")) + 1  # the last model turn and its end of turn
    episode = scripted_episode(tokenizer, face(5), [(FAST, None), (CALL, "FFTTool")], "context")
    episode = dataclasses.replace(
        episode,
        token_ids=full.token_ids[:-cut],
        logprobs=full.logprobs[:-cut],
        mask=full.mask[:-cut],
        images=full.images,
    )
    assert len(episode.images) == 2 and episode.mask[-1] == 0  # it ends with the tool's turn
    prefix, forced = final_answer_prefix(episode, tokenizer)
    assert forced and prefix.text == "<answer>"
    assert prefix.images == episode.images[:1]
    (score,) = answer_probabilities(model, tokenizer, [prefix])
    assert 0.0 < score < 1.0


def test_a_paper_001_sample_is_scored_after_its_answer_tag(policy) -> None:
    _, _, tokenizer = policy
    messages = rft_fas_messages()
    prompt = tokenizer.prompt_ids(messages)
    ids = [*tokenizer.encode(ANSWERED_001), tokenizer.end_of_turn_id]
    completion = CompletionOut(token_ids=ids, logprobs=[0.0] * len(ids), finish_reason="stop", text="")
    episode = single_turn_episode(prompt, completion, face(3), messages, tokenizer)
    prefix, forced = final_answer_prefix(episode, tokenizer)
    assert not forced
    assert prefix.ids == prompt
    assert prefix.text == "<thinking>flat print texture</thinking><answer>"


# -- the probability --------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "internvl3"])
def test_answer_probability_is_one_full_forward_with_every_image(policy_of, arch: str) -> None:
    model, _, tokenizer = policy_of(arch)
    episode = scripted_episode(tokenizer, face(4), ONE_TOOL)
    assert len(episode.images) == 2  # the dataset face and the FFT tool's output
    prefix, _ = final_answer_prefix(episode, tokenizer)
    forwards, hook = count_forwards(model)
    try:
        (score,) = answer_probabilities(model, tokenizer, [prefix])
    finally:
        hook.remove()
    assert forwards[0] == 2  # one per class, whatever the episode holds

    def answer_logprob(text: str, other: str) -> float:
        """log p of `text`'s tokens from where they part from `other`'s, by one full forward."""
        ids = prefix.ids + tokenizer.encode(prefix.text + text)
        other_ids = prefix.ids + tokenizer.encode(prefix.text + other)
        split = next(i for i, (a, b) in enumerate(zip(ids, other_ids, strict=False)) if a != b)
        expanded = tokenizer.expand_images(ids, episode.images)
        per_image = expanded.image_inputs.get("image_grid_thw", expanded.image_inputs["pixel_values"])
        assert per_image.shape[0] == 2  # Qwen2.5-VL's grids, InternVL's 56x56 tiles: one per image
        with torch.no_grad():
            logits = model(**expanded.model_inputs()).logits[0].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        n = len(expanded.input_ids)
        positions = range(n - (len(ids) - split), n)
        return sum(logprobs[p - 1, expanded.input_ids[p]].item() for p in positions)

    live, spoof = TAR_FAS_FINAL_CLASSES
    expected = 1 / (1 + np.exp(answer_logprob(live, spoof) - answer_logprob(spoof, live)))
    assert score == pytest.approx(expected, abs=1e-5)
    (score_001,) = answer_probabilities(model, tokenizer, [prefix], RFT_FAS_FINAL_CLASSES)
    live, spoof = RFT_FAS_FINAL_CLASSES
    assert score_001 == pytest.approx(
        1 / (1 + np.exp(answer_logprob(live, spoof) - answer_logprob(spoof, live))), abs=1e-5
    )


def test_the_fast_answer_is_scored_after_the_episodes_first_turn(policy) -> None:
    model, processor, tokenizer = policy
    messages = episode_fast_answer_messages(tokenizer)
    rendered = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert rendered == tokenizer.render(first_turn_messages(), add_generation_prompt=True)
    assert "<tools>" in rendered  # the rollout server's first turn lists the tools
    processor.tokenizer.padding_side = "right"
    scores = fast_answer_scores(model, tokenizer, [face(5), face(6), face(7)], batch_size=2)
    assert processor.tokenizer.padding_side == "right"
    assert len(scores) == 3 and all(0.0 < s < 1.0 for s in scores)


@pytest.mark.parametrize(
    ("live", "spoof", "cap"), [(3, 97, 10), (50, 50, 10), (1, 30, 2), (40, 2, 7), (5, 0, 3)]
)
def test_a_subsample_keeps_both_classes_in_proportion(live: int, spoof: int, cap: int) -> None:
    labels = [0] * live + [1] * spoof
    dataset = Dataset.from_dict({"id": [f"f{i}" for i in range(len(labels))], "label": labels})
    drawn = subsample(dataset, cap, seed=3)
    assert len(drawn) == cap and len(set(drawn["id"])) == cap
    assert set(drawn["id"]) <= set(dataset["id"])
    counts = [drawn["label"].count(0), drawn["label"].count(1)]
    present = [live > 0, spoof > 0]
    assert [c > 0 for c in counts] == present  # every class there is, is drawn
    if all(present):
        assert abs(counts[0] - cap * live / len(labels)) <= 1  # in proportion, up to rounding
    assert subsample(dataset, cap, seed=3)["id"] == drawn["id"]  # seeded
    assert subsample(dataset, len(labels), seed=3) is dataset


def test_equal_shards_pad_with_the_last_item_and_unshard_drops_it() -> None:
    items = list("abcde")
    for count in (1, 2, 3, 4, 7):
        shards = [equal_shard(items, count, index) for index in range(count)]
        assert len({len(shard) for shard in shards}) == 1
        assert unshard([x for shard in shards for x in shard], len(items)) == items
    assert equal_shard(items, 2, 1) == ["d", "e", "e"]
    assert equal_shard([], 3, 2) == []


# -- the evaluation ---------------------------------------------------------------------------------------


def test_dt_grpo_is_scored_by_its_fast_and_final_answers(policy) -> None:
    model, processor, tokenizer = policy
    source = ScriptedSource(tokenizer, answers=lambda k: k % 2 == 0)
    targets = {"street": target_dataset(6), "studio": target_dataset(4)}
    model.train()
    results = evaluate_targets(
        model=model,
        processor=processor,
        arch=ARCH,
        targets=targets,
        method="dt_grpo",
        episode_source=source,
        batch_size=4,
        max_samples=4,
        max_completion_length=64,
        progress=False,
    )
    assert model.training  # the training mode is restored
    assert [r["kind"] for r in source.requests] == ["episodes", "episodes"]
    assert [r["images"] for r in source.requests] == [4, 4]  # "street" subsampled to 4
    for request in source.requests:
        assert request["n"] == 1
        sampling = request["sampling"]
        assert sampling.temperature == 0.0 and sampling.max_tokens == 64
    n_spoof = {"street": sum(targets["street"].shuffle(seed=0).select(range(4))["label"]), "studio": 2}
    for name, result in results.items():
        assert result["n_samples"] == 4
        assert result["final_forced_fraction"] == 0.5  # every other episode has no answer
        assert result["weights_version"] == VERSION
        for answer in ("fast", "final"):
            overall = result[answer]["overall"]
            assert overall["n_samples"] == 4 and overall["n_spoof"] == n_spoof[name]
            assert 0.0 <= overall["hter"] <= 1.0 and 0.0 <= overall["auc"] <= 1.0
            assert result[answer]["domains"].keys() == {name}
    flat = flatten_metrics(results)
    assert flat["target/street/fast/hter"] == results["street"]["fast"]["overall"]["hter"]
    assert flat["target/studio/final/auc"] == results["studio"]["final"]["overall"]["auc"]
    assert flat["target/street/final/forced_fraction"] == 0.5
    assert len(flat) == 2 * (2 * 2 + 1)
    assert all(isinstance(value, float) for value in flat.values())


def test_kept_samples_hold_each_images_scores_turns_and_a_safe_image_path(policy, tmp_path: Path) -> None:
    model, processor, tokenizer = policy
    targets = {"../../outside": target_dataset(4)}
    results = evaluate_targets(
        model=model,
        processor=processor,
        arch=ARCH,
        targets=targets,
        method="dt_grpo",
        episode_source=ScriptedSource(tokenizer, answers=lambda k: k % 2 == 0),
        batch_size=4,
        max_completion_length=64,
        progress=False,
        samples_dir=tmp_path / "eval",
    )
    samples = results["../../outside"]["samples"]
    assert [s["id"] for s in samples] == [f"face-{i}" for i in range(4)]
    assert [s["forced"] for s in samples] == [False, True, False, True]
    assert samples[1]["turns"] == [turn for turn, _ in MALFORMED]
    for sample, image in zip(samples, targets["../../outside"]["image"], strict=True):
        assert sample["scores"].keys() == {"fast", "final"}
        assert sample["domain"] == "../../outside" and sample["label"] in ("live", "spoof")
        path = (tmp_path / "eval" / sample["image"]).resolve()
        assert path.is_relative_to(
            (tmp_path / "eval" / "images").resolve()
        )  # the domain is a name, not a path
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(image.convert("RGB")))
    # The scores are the ones the report was computed from.
    for answer in ("fast", "final"):
        again = compute_report([{**s, "score": s["scores"][answer]} for s in samples])
        assert again["overall"] == results["../../outside"][answer]["overall"]


def test_without_an_episode_source_only_the_fast_answer_is_scored(policy) -> None:
    model, processor, _ = policy
    results = evaluate_targets(
        model=model,
        processor=processor,
        arch=ARCH,
        targets={"t": target_dataset(4)},
        method="st_grpo",
        progress=False,
    )
    assert results["t"].keys() == {"n_samples", "fast"}


def test_rft_fas_is_scored_by_its_final_answer_only(policy) -> None:
    model, processor, tokenizer = policy
    source = ScriptedSource(tokenizer, answers=lambda k: k != 1)
    results = evaluate_targets(
        model=model,
        processor=processor,
        arch=ARCH,
        targets={"street": target_dataset(4)},
        method="rft_fas",
        episode_source=source,
        progress=False,
    )
    assert [r["kind"] for r in source.requests] == ["samples"]
    result = results["street"]
    assert "fast" not in result
    assert result["final_forced_fraction"] == 0.25
    assert 0.0 <= result["final"]["overall"]["auc"] <= 1.0
    assert set(flatten_metrics(results)) == {
        "target/street/final/hter",
        "target/street/final/auc",
        "target/street/final/forced_fraction",
    }
    with pytest.raises(ValueError, match="episode_source"):
        evaluate_targets(model=model, processor=processor, arch=ARCH, targets={}, method="rft_fas")
    with pytest.raises(ValueError, match="no fast answer"):
        evaluate_targets(
            model=model, processor=processor, arch=ARCH, targets={}, method="rft_fas", final_answer=False
        )


@pytest.mark.parametrize("method", ["dt_grpo", "rft_fas"])
def test_scores_follow_the_image_not_a_constant(policy, method: str) -> None:
    """Rigged so that bright means spoof, the policy separates the lit faces perfectly; rigged the other
    way round, it gets every one wrong. A constant score would give AUC 0.5 either way."""
    model, processor, tokenizer = policy
    answers = ["fast", "final"] if method == "dt_grpo" else ["final"]
    for sign, auc, hter in ((1.0, 1.0, 0.0), (-1.0, 0.0, 1.0)):
        result = evaluate_targets(
            model=BrightMeansSpoof(model, tokenizer, sign),
            processor=processor,
            arch=ARCH,
            targets={"lit": target_dataset(6, lit_face)},
            method=method,
            episode_source=ScriptedSource(tokenizer, answers=lambda k: k % 3 != 0),  # forced answers too
            batch_size=4,
            progress=False,
        )["lit"]
        assert result["final_forced_fraction"] == pytest.approx(1 / 3)
        for answer in answers:
            assert result[answer]["overall"]["auc"] == auc
            assert result[answer]["overall"]["hter"] == hter


# -- several processes ------------------------------------------------------------------------------------

TWO_PROCESS_RUN = """\
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from accelerate import Accelerator, PartialState
from accelerate.utils import GradientAccumulationPlugin, gather_object
import test_target as T
from rft.eval.target import evaluate_targets
from rft.models.conversation import ConversationTokenizer
from rft.models.loading import load_policy

model_dir, out = Path({model_dir!r}), Path({out!r})
model, processor = load_policy(model_dir)
reference, _ = load_policy(model_dir)  # loaded before ZeRO-3 partitions `model`: stays whole
PartialState(cpu=True)  # gloo over the CPU processes, as TrainingArguments(use_cpu=True) sets it up
# The shipped config leaves gradient accumulation to the trainer ('auto'); a bare Accelerator is given it.
accelerator = Accelerator(gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=1))
config = accelerator.state.deepspeed_plugin.deepspeed_config  # no dataloader gives the batch sizes
config.update(train_micro_batch_size_per_gpu=1, train_batch_size=accelerator.num_processes)
config["zero_optimization"]["stage3_param_persistence_threshold"] = 0  # partition even the tiny layers
engine = accelerator.prepare(model)
module = accelerator.unwrap_model(engine)
partitioned = all(p.numel() == 0 for p in module.parameters())
forwards, _ = T.count_forwards(module)
tokenizer = ConversationTokenizer(processor, "qwen2_5_vl")
source = T.ScriptedSource(tokenizer, answers=lambda k: k % 2 == 0) if accelerator.is_main_process else None
arguments = dict(processor=processor, arch="qwen2_5_vl", targets={{"street": T.target_dataset(5)}},
                 method="dt_grpo", batch_size=2, progress=False)
engine.train()
results = evaluate_targets(model=engine, episode_source=source, accelerator=accelerator, **arguments)
counts = gather_object([forwards[0]])
if accelerator.is_main_process:
    single = evaluate_targets(
        model=reference, episode_source=T.ScriptedSource(tokenizer, answers=lambda k: k % 2 == 0), **arguments
    )
    (out / "result.json").write_text(json.dumps({{
        "zero3": results, "single": single, "forwards": counts, "partitioned": partitioned,
        "stage": accelerator.state.deepspeed_plugin.zero_stage, "training": module.training,
    }}))
"""


@pytest.mark.slow  # two processes under DeepSpeed, about a minute of CPU
def test_two_processes_under_deepspeed_zero3_match_one(
    qwen_dir: Path, tmp_path: Path, launch_on_two_cpus
) -> None:
    """Five faces on two ranks (shares of three, one padded): only the main process has an episode source,
    every rank runs the same number of forwards through the partitioned model, and the reports equal those
    of one process with the whole model."""
    script = TWO_PROCESS_RUN.format(
        tests=str(Path(__file__).parent), model_dir=str(qwen_dir), out=str(tmp_path)
    )
    result = launch_on_two_cpus("zero3", script)  # deploy/accelerate/zero3_8gpu.yaml on 2 CPUs
    assert result["stage"] == 3 and result["partitioned"] and result["training"]
    # Shares of 3: fast 2 classes x ceil(3 / 2) batches, final 2 classes x 3 episodes.
    assert result["forwards"] == [10, 10]
    zero3, single = result["zero3"]["street"], result["single"]["street"]
    assert zero3["final_forced_fraction"] == single["final_forced_fraction"] == 0.4
    for answer in ("fast", "final"):
        for key in ("auc", "hter", "eer_threshold"):
            assert zero3[answer]["overall"][key] == pytest.approx(single[answer]["overall"][key], abs=1e-5)


def test_a_model_that_answers_spoof_is_scored_spoof(protocol_model_dir: Path) -> None:
    """The protocol model has learnt to answer "<Spoof><reason>..." first and "<answer><Spoof></answer>"
    last, so both of its answers must score P(spoof) near 1. Scoring class texts tokenised apart from the
    text around them gave such a trained model scores below 0.5 (the regression this guards)."""
    torch.set_num_threads(1)
    model, processor = load_policy(protocol_model_dir)
    tokenizer = ConversationTokenizer(processor, "qwen2_5_vl")
    images = [protocol_image(seed) for seed in range(2)]
    assert min(fast_answer_scores(model, tokenizer, images)) > 0.9
    episodes = [scripted_episode(tokenizer, image, ONE_TOOL) for image in images]
    prefixes = [final_answer_prefix(episode, tokenizer)[0] for episode in episodes]
    assert min(answer_probabilities(model, tokenizer, prefixes)) > 0.9


def test_the_scored_fast_answer_tokens_are_those_the_model_writes(policy) -> None:
    """Each class text is scored as the head of a fast answer written whole: its ids must begin the ids of a
    complete fast answer ("<Spoof><reason>...", where byte-level BPE merges "><")."""
    _, _, tokenizer = policy
    for cls, written in zip(FAST_ANSWER_CLASSES, ("<Real><reason>a live face</reason>", FAST), strict=True):
        scored = tokenizer.encode(cls)
        assert tokenizer.encode(written)[: len(scored)] == scored


def test_the_fast_answer_prompt_lists_only_the_runs_tools(policy, monkeypatch) -> None:
    import rft.eval.target as target

    model, processor, _ = policy
    shown: list[tuple[str, ...]] = []

    class Recording(target.ConversationTokenizer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            shown.append(self.tool_names)

    monkeypatch.setattr(target, "ConversationTokenizer", Recording)
    for tools in (("ZoomInTool", "HOGTool"), None):
        evaluate_targets(
            model=model,
            processor=processor,
            arch=ARCH,
            targets={"t": target_dataset(2)},
            method="st_grpo",
            progress=False,
            tool_names=tools,
        )
    assert shown == [("ZoomInTool", "HOGTool"), TOOL_NAMES]

"""GRPO learns: from a checkpoint that already writes paper 003's format, a short DT-GRPO run raises the mean
reward and the calls of the tool that pays (per episode, and as a share of the calls) by fixed margins; and it
stops learning when GRPO is broken.

The checkpoint (built once per session by a short SFT of the tiny model) has habits, as a stage-2 model
does: after its fast answer it calls FFTTool or LBPTool in some of its episodes and answers "Real" at once in
the rest (wrong: every face here is a spoof). After FFTTool's image it answers "Spoof", after LBPTool's
"Real". So FFTTool pays under DT-GRPO's reward (Eq. 14: a right final answer and the tool-diversity term,
paid only with a right answer), and a working GRPO must shift the policy towards it: the test asks for a rise
of the reward, of FFTTool's calls per episode and of FFTTool's share of the calls.

Which tool to call is decided only inside the tool-calling turn, so a loss mask that hides those turns
leaves that choice untrained: FFTTool's share of the calls stays where it was. (Whether to call at all is
also decided by the answering turns: pushing them down raises every alternative, both tools alike. With a
single tool and calls per episode as the only tool figure, the masked run learned to call through that path
alone, 0.04 -> 0.75 calls per episode, and the mutation went uncaught.)

Episodes come from the policy itself: at each turn the source samples one of a few candidate turns with the
probability the current model gives it (the product of its token probabilities, renormalised over the
candidates), with the model's own per-token logprobs as the sampling logprobs, and runs the tool for real.
So every shift of the policy's choices is the trainer's doing (real TRL GRPOTrainer, real rewards, real
tool images), without vLLM and without the noise of free generation from a tiny model.

The mutation switch (rft.trainers.grpo_mutations) must make this test fail:

    RFT_MUTATION=flip_advantage  pytest tests/trainers/test_learning.py -k learns   # fails
    RFT_MUTATION=mask_tool_turns pytest tests/trainers/test_learning.py -k learns   # fails

`test_a_broken_grpo_does_not_pass` runs both (slow) and asserts exactly that.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig

from reward_service import InProcessRewards
from rft.eval import curves
from rft.eval.target import last_model_turn_start
from rft.models.conversation import ConversationTokenizer
from rft.models.loading import detect_arch, load_policy
from rft.prompts.episodes import first_turn_messages
from rft.rollout.episode import Episode, ToolCallRecord
from rft.trainers.grpo import EpisodeGRPOTrainer
from rft.trainers.grpo_mutations import MUTATION_ENV, MUTATIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rollout_server"))
from episode_logprobs import episode_logprobs
from protocol_model import protocol_image, trajectory_ids

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IMAGE_SIDE = 56
FAST = ("<Spoof><reason>flat print texture</reason>", None)
CALL_FFT = (
    '<think>check the spectrum</think>\n<tool_call>\n{"name": "FFTTool", "arguments": {}}\n</tool_call>',
    "FFTTool",
)
CALL_LBP = (
    '<think>inspect the texture</think>\n<tool_call>\n{"name": "LBPTool", "arguments": {}}\n</tool_call>',
    "LBPTool",
)
REAL_NOW = ("<think>looks flat</think>\n<answer><Real></answer>", None)
# What the policy writes after each tool's result (one candidate each).
AFTER_TOOL = {
    "FFTTool": ("<think>periodic peaks</think>\n<answer><Spoof></answer>", None),
    "LBPTool": ("<think>skin-like texture</think>\n<answer><Real></answer>", None),
}
# What the policy may write after its fast answer.
SECOND_TURN = (CALL_FFT, CALL_LBP, REAL_NOW)
# The SFT mixture that gives the checkpoint its habits.
HABITS = [
    [FAST, CALL_FFT, AFTER_TOOL["FFTTool"]],
    [FAST, CALL_LBP, AFTER_TOOL["LBPTool"]],
    [FAST, REAL_NOW],
    [FAST, REAL_NOW],
]

STEPS = 12
GROUP = 8
IMAGES_PER_STEP = 2
# The rise from the first quarter of the steps to the last that counts as learning (docs/EFFICACY.md has
# the figures of each run: without a mutation +0.36 reward, +0.63 FFTTool calls per episode, +0.41 share;
# with the tool turns masked +0.12, +0.21, -0.11).
REWARD_MARGIN = 0.15
TOOL_MARGIN = 0.3
SHARE_MARGIN = 0.2


def sft_on_habits(base_dir: Path, out_dir: Path, steps: int = 40, lr: float = 3e-3) -> Path:
    """Copy `base_dir` to `out_dir`, trained by cross-entropy on every trajectory of HABITS each step."""
    model, processor = load_policy(base_dir)
    tokenizer = ConversationTokenizer(processor, detect_arch(base_dir))
    batches = []
    for turns in HABITS:
        ids, mask, images = trajectory_ids(tokenizer, protocol_image(0, IMAGE_SIDE), turns)
        expanded = tokenizer.expand_images(ids, images)
        labels = expanded.input_ids.clone()
        labels[expanded.spread(torch.tensor(mask), fill=0) == 0] = -100
        batches.append((expanded.model_inputs(), labels[None]))
    torch.manual_seed(0)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        optimizer.zero_grad()
        for inputs, labels in batches:
            (model(**inputs, labels=labels).loss / len(batches)).backward()
        optimizer.step()
    model.eval().save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


# The habits checkpoint is kept under .cache/ and reused by later sessions (under a CPU-minute to build);
# bump the version when HABITS, the SFT or the tiny model change.
HABITS_DIR = Path(".cache/test-models/habits-v3-qwen2_5_vl-56")


@pytest.fixture(scope="session")
def habits_dir(model_cache: Path) -> Path:
    from rft.models.tiny import TINY_MODEL_VERSION, ensure_tiny_model

    target = HABITS_DIR.with_name(f"{HABITS_DIR.name}-tiny{TINY_MODEL_VERSION}")
    if not (target / "config.json").is_file():
        base = ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny", image_size=IMAGE_SIDE)
        staging = sft_on_habits(base, target.parent / f"{target.name}.{os.getpid()}.staging")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:  # atomic: a half-written checkpoint is never reused; a session that got there first wins
            staging.rename(target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
            shutil.rmtree(staging, ignore_errors=True)
    return target


class PolicyChoices:
    """An episode source whose episodes the current policy chooses, turn by turn, among candidate turns
    (see the module docstring). Seeded: the same weights and step give the same episodes."""

    def __init__(self, model: torch.nn.Module, tokenizer: ConversationTokenizer, seed: int = 0) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.generator = torch.Generator().manual_seed(seed)
        self.pushes = 0
        self.cache: dict[tuple, list[float]] = {}

    def update_weights(self, state_dict) -> int:
        self.pushes += 1  # the source reads the trainer's own model: nothing to copy
        self.cache.clear()
        return self.pushes

    def episodes(self, images, *, n, sampling=None):
        return [self._group(image, n) for image in images], self.pushes

    def _group(self, image, n: int) -> list[Episode]:
        with torch.no_grad():
            second = self._probabilities(image, [FAST], SECOND_TURN)
            picks = torch.multinomial(second, n, replacement=True, generator=self.generator).tolist()
            return [self._episode(image, self._turns(SECOND_TURN[pick])) for pick in picks]

    @staticmethod
    def _turns(second: tuple) -> list:
        return [FAST, second, *([AFTER_TOOL[second[1]]] if second[1] else [])]

    def _logprobs(self, image, key: tuple, ids: list[int], images: list) -> list[float]:
        """Per-token logprobs of a trajectory, computed once per image, trajectory and weights version."""
        cache_key = (id(image), key, self.pushes)
        if cache_key not in self.cache:
            self.cache[cache_key] = episode_logprobs(self.model, self.tokenizer, ids, images).tolist()
        return self.cache[cache_key]

    def _turn_tokens(self, image, turns: list) -> tuple[list[int], list[float]]:
        """The ids and per-token logprobs of the last turn of `turns`, under the current policy."""
        ids, mask, images = trajectory_ids(self.tokenizer, image, turns)
        logps = self._logprobs(image, tuple(text for text, _ in turns), ids, images)
        start = last_model_turn_start(mask)
        return ids[start:], logps[start:]

    def _probabilities(self, image, prefix: list, candidates: tuple) -> torch.Tensor:
        return torch.tensor(
            branch_probabilities([self._turn_tokens(image, [*prefix, c]) for c in candidates])
        )

    def _episode(self, image, turns: list) -> Episode:
        ids, mask, images = trajectory_ids(self.tokenizer, image, turns)
        logps = self._logprobs(image, tuple(text for text, _ in turns), ids, images)
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


def branch_probabilities(turns: list[tuple[list[int], list[float]]]) -> list[float]:
    """How likely the policy is to write each of `turns` (ids, logprobs), decided where they differ: walking
    the turns' common prefixes, at each token where they part the policy's probabilities of the parting tokens
    are renormalised over those tokens. Tokens the turns share cost nothing, so a long turn is not less likely
    for its length alone."""
    probabilities = [1.0] * len(turns)

    def walk(members: list[int], position: int) -> None:
        while len(members) > 1:
            branches: dict[int, list[int]] = {}
            for index in members:
                branches.setdefault(turns[index][0][position], []).append(index)
            if len(branches) > 1:
                weights = {token: math.exp(turns[group[0]][1][position]) for token, group in branches.items()}
                total = sum(weights.values())
                for token, group in branches.items():
                    for index in group:
                        probabilities[index] *= weights[token] / total
                    walk(group, position + 1)
                return
            position += 1

    walk(list(range(len(turns))), 0)
    return probabilities


def grpo_run(model_dir: Path, out_dir: Path) -> list[dict]:
    """STEPS DT-GRPO steps from `model_dir`; the per-step log entries."""
    model, processor = load_policy(model_dir)
    source = PolicyChoices(model, ConversationTokenizer(processor, detect_arch(model_dir)))
    faces = [protocol_image(seed, IMAGE_SIDE) for seed in range(1, 1 + STEPS * IMAGES_PER_STEP)]
    args = GRPOConfig(
        output_dir=str(out_dir),
        use_cpu=True,
        num_generations=GROUP,
        per_device_train_batch_size=GROUP * IMAGES_PER_STEP,
        max_steps=STEPS,
        learning_rate=2e-3,
        weight_decay=0.0,
        loss_type="grpo",
        beta=0.0,
        max_completion_length=64,
        gradient_checkpointing=False,
        disable_dropout=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        seed=0,
        bf16=False,
    )
    trainer = EpisodeGRPOTrainer(
        model,
        args=args,
        train_dataset=Dataset.from_dict({"image": faces, "label": ["spoof"] * len(faces)}),
        processing_class=processor,
        episode_source=source,
        method="dt_grpo",
        reward_scorer=InProcessRewards(),
    )
    trainer.train()
    return [entry for entry in trainer.state.log_history if "reward" in entry]


def quarter_change(steps: list[dict], key: str) -> tuple[float, float]:
    """Mean of `key` over the first and over the last quarter of the steps (rft.eval.curves)."""
    change = curves.quarter_change(curves.step_series(steps, key), key)
    return change.first, change.last


def learned(steps: list[dict]) -> tuple[bool, dict[str, tuple[float, float]]]:
    figures = {
        "reward": quarter_change(steps, "reward"),
        "correct": quarter_change(steps, "rewards/r_rsn/mean"),
        "tool calls": quarter_change(steps, "tools/call_frequency"),
        "FFTTool calls": quarter_change(steps, "tools/FFTTool/call_frequency"),
    }
    figures["FFTTool share"] = tuple(
        fft / calls if calls else 0.0
        for fft, calls in zip(figures["FFTTool calls"], figures["tool calls"], strict=True)
    )
    rose = all(
        figures[key][1] - figures[key][0] >= margin
        for key, margin in (
            ("reward", REWARD_MARGIN),
            ("FFTTool calls", TOOL_MARGIN),
            ("FFTTool share", SHARE_MARGIN),
        )
    )
    print("first quarter -> last quarter:", {k: f"{a:.3f} -> {b:.3f}" for k, (a, b) in figures.items()})
    return rose, figures


@pytest.mark.slow  # under a minute on 2 idle cores (1.5 with the habits checkpoint); more on busy ones
@pytest.mark.timeout(2400)
def test_grpo_learns_to_call_the_tool_that_pays(habits_dir: Path, tmp_path: Path) -> None:
    rose, figures = learned(grpo_run(habits_dir, tmp_path))
    assert rose, f"GRPO did not learn: first -> last quarter {figures}"


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("mutation", MUTATIONS)
def test_a_broken_grpo_does_not_pass(
    mutation: str, habits_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MUTATION_ENV, mutation)
    rose, figures = learned(grpo_run(habits_dir, tmp_path))
    assert not rose, f"the learning test passed with {mutation}: {figures}"


def test_an_unknown_mutation_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from rft.trainers.grpo_mutations import active_mutation

    monkeypatch.setenv(MUTATION_ENV, "flip_advantages")
    with pytest.raises(ValueError, match="not a test mutation"):
        active_mutation()


def test_mask_tool_turns_zeroes_exactly_the_calling_turns() -> None:
    from rft.trainers.grpo_mutations import without_tool_turns

    mask = [0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1]
    turns = ["<Spoof><reason>x</reason>", "<think>a</think><tool_call>{}</tool_call>", "<answer>"]
    assert without_tool_turns(mask, turns) == [0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1]


def test_branch_probabilities_are_decided_where_turns_part() -> None:
    # Two turns share token 5, then part (log 0.3 vs log 0.1); the third parts from both at once.
    turns = [
        ([5, 6, 7, 8], [0.0, math.log(0.5), math.log(0.3), -9.0]),
        ([5, 6, 9], [0.0, math.log(0.5), math.log(0.1)]),
        ([5, 4], [0.0, math.log(0.5)]),
    ]
    first, second, third = branch_probabilities(turns)
    assert third == pytest.approx(0.5)
    assert (first, second) == (pytest.approx(0.5 * 0.75), pytest.approx(0.5 * 0.25))

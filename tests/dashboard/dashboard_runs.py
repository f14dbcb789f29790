"""Run folders written by the project's own writers, as a GRPO job writes them: the rollout recorder
(rft.trainers.rollout_records) with real tool outputs and rewards from the reward service's in-process
scorer, and TensorBoard events through the trainers' callback (rft.trainers.checkpoints.TensorBoardIn)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image
from transformers import TrainerControl, TrainerState, TrainingArguments

from reward_service.client import InProcessRewards
from rft.rollout.episode import Episode, ToolCallRecord
from rft.trainers.checkpoints import TensorBoardIn
from rft.trainers.grpo_metrics import episode_metrics, summarize
from rft.trainers.rollout_records import RolloutRecorder

GROUP_SIZE = 4
GROUPS = 2
METHOD = "dt_grpo"
REWARD_COLUMNS = ("fast", "reasoning", "tool")  # dt_grpo's reward functions (rft.methods)
TOOL_PLAN = [[], ["FFTTool"], ["FFTTool", "LBPTool"], ["ZoomInTool"]]  # the tools of episode i % 4
ZOOM = {"bbox": [8, 8, 40, 40]}


def face(group: int, step: int) -> Image.Image:
    """A small textured picture per group (a spoof has a moire pattern), the same for the group's episodes."""
    rng = np.random.default_rng(1000 * step + group)
    y, x = np.mgrid[0:64, 0:64]
    base = 128 + 60 * np.sin(x / 9.0) * np.cos(y / 11.0)
    if group % 2:
        base = base + 40 * np.sin((x + y) * 1.7)
    pixels = np.stack([base, base * 0.9, base * 0.8], axis=-1) + rng.normal(0, 8, (64, 64, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def episode(image: Image.Image, label: str, index: int, tools_on: bool, malformed: bool) -> Episode:
    rewards = InProcessRewards()
    right, wrong = ("<Spoof>", "<Real>") if label == "spoof" else ("<Real>", "<Spoof>")
    answer = right if index % 3 else wrong
    turns = [f"{answer}<reason>looking at the skin texture of episode {index}</reason>"]
    images, calls = [image], []
    for name in TOOL_PLAN[index % len(TOOL_PLAN)] if tools_on else []:
        arguments = ZOOM if name == "ZoomInTool" else {}
        call = json.dumps({"name": name, "arguments": arguments})
        turns.append(f"<think>check with {name}</think><tool_call>{call}</tool_call>")
        result = rewards.run_tool(name, image, arguments, output_size=64)
        calls.append(ToolCallRecord(name, arguments, result.ok, result.error, 0.01))
        if result.ok:
            images.append(Image.fromarray(np.asarray(result.image)))
    if malformed:
        turns.append("I am not sure what to do here")
        stop = "malformed"
    else:
        turns.append(f"<think>the evidence says {answer}</think><answer>{answer}</answer>")
        stop = "answer"
    tokens = 20 + 15 * len(turns) + index
    return Episode(
        token_ids=list(range(30 + tokens)),
        logprobs=[0.0] * 30 + [-0.5] * tokens,
        mask=[0] * 30 + [1] * tokens,
        images=images,
        turns=turns,
        tool_calls=calls,
        prompt_length=30,
        stop_reason=stop,
    )


def group_advantages(totals: list[float]) -> list[float]:
    advantages = []
    for start in range(0, len(totals), GROUP_SIZE):
        group = totals[start : start + GROUP_SIZE]
        mean, std = float(np.mean(group)), float(np.std(group))
        advantages += [(value - mean) / (std + 1e-4) for value in group]
    return advantages


class RunWriter:
    """Writes steps of one run folder; `tools_until` (exclusive) makes the policy stop calling tools."""

    def __init__(
        self, run_dir: Path, *, tools_until: int | None = None, malformed_at: int | None = None
    ) -> None:
        self.run_dir = run_dir
        self.tools_until = tools_until
        self.malformed_at = malformed_at
        self.recorder = RolloutRecorder(run_dir / "rollouts")
        self.tensorboard = TensorBoardIn(run_dir / "tensorboard")
        self.args = TrainingArguments(output_dir=str(run_dir / "checkpoints"), report_to=[])
        self.state = TrainerState()

    def write_step(self, step: int) -> None:
        tools_on = self.tools_until is None or step < self.tools_until
        labels, episodes = [], []
        for group in range(GROUPS):
            label = "spoof" if group % 2 else "live"
            image = face(group, step)
            for i in range(GROUP_SIZE):
                malformed = step == self.malformed_at and i < 2
                episodes.append(episode(image, label, group * GROUP_SIZE + i + step, tools_on, malformed))
                labels.append(label)
        rollouts = [{"id": str(i), "label": labels[i], "turns": e.turns} for i, e in enumerate(episodes)]
        scored = InProcessRewards().score(METHOD, rollouts)
        totals = [s.total for s in scored]
        rewards = {name: [s.components[name] for s in scored] for name in REWARD_COLUMNS}
        rewards |= {f"component/{n}": [s.components[n] for s in scored] for n in scored[0].components}
        self.recorder.record(
            step=step,
            episodes=episodes,
            labels=labels,
            rewards=rewards,
            totals=totals,
            advantages=group_advantages(totals),
            group_size=GROUP_SIZE,
            weights_version=step,
        )
        self.log(step, totals, rewards, episode_metrics([summarize(e) for e in episodes]))

    def log(self, step: int, totals: list[float], rewards: dict, metrics: dict[str, float]) -> None:
        """The scalars a GRPO step logs (rft.trainers.grpo), through the trainers' TensorBoard callback."""
        logs = {
            "loss": 0.05 / step,
            "kl": 0.001 * step,
            "entropy": 1.5 - 0.05 * step,
            "grad_norm": 0.8,
            "learning_rate": 1e-6,
            "reward": float(np.mean(totals)),
            "reward_std": float(np.std(totals)),
            **{f"rewards/{name}/mean": float(np.mean(values)) for name, values in rewards.items()},
            "time/rollout_s": 2.0 + 0.1 * step,
            "time/reward_s": 0.3,
            "time/weight_sync_s": 0.5,
            "time/update_s": 1.2,
            **metrics,
        }
        if step % 2 == 0:
            logs |= {
                "target/HQ-WMCA/final/hter": 0.3 - 0.01 * step,
                "target/HQ-WMCA/final/auc": 0.7 + 0.01 * step,
            }
        assert all(math.isfinite(v) for v in logs.values())
        self.state.global_step = step
        self.tensorboard.on_log(self.args, self.state, TrainerControl(), logs=logs)


def write_run(run_dir: Path, steps: int, **options: int | None) -> RunWriter:
    writer = RunWriter(run_dir, **options)
    for step in range(1, steps + 1):
        writer.write_step(step)
    return writer


# -- an evaluation's per-sample records (rft.eval.sample_records, as the GRPO job's evaluation writes them)

EVAL_DOMAINS = ("street", "studio")
# (final P(spoof), fast P(spoof)) of sample i; label: live for even i, spoof for odd i.
EVAL_SCORES = [
    (0.10, 0.4),
    (0.02, 0.9),
    (0.95, 0.6),
    (0.85, 0.7),
    (0.30, 0.5),
    (0.60, 0.9),
    (0.05, 0.2),
    (0.99, 0.8),
]
WORST_SAMPLE = "face-1"  # a spoof given P(spoof) 0.02 by the final answer: the most confident wrong answer


def write_evaluation(run_dir: Path, step: int) -> list[dict]:
    from rft.eval.sample_records import image_name, sample_row, save_images, write_samples

    folder = run_dir / "eval"
    rows, names, images = [], [], []
    for i, (final, fast) in enumerate(EVAL_SCORES):
        spoof = bool(i % 2)
        row = {
            "id": f"face-{i}",
            "label": "spoof" if spoof else "live",
            "attack_type": ("print" if i % 4 == 1 else "replay") if spoof else None,
            "domain": EVAL_DOMAINS[i // 4],
        }
        names.append(image_name(row["domain"], row["id"]))
        images.append(face(i % 2, 100 + i))
        turns = [f"<Spoof><reason>sample {i}</reason>", "<think>done</think><answer><Spoof></answer>"]
        rows.append(sample_row(row, image=names[-1], fast=fast, final=final, forced=False, turns=turns))
    save_images(folder, names, images)
    write_samples(folder, step, rows)
    return rows


# -- a baseline's training log, written as transformers writes it (no TensorBoard, no rollouts)

BASELINE_TERMS = ("loss_content", "loss_style", "loss_cls", "loss_cue")


def baseline_state(steps: int, terms: tuple[str, ...]) -> TrainerState:
    state = TrainerState()
    for step in range(1, steps + 1):
        entry = {name: 1.0 / (step + k) for k, name in enumerate(terms)}
        entry |= {"loss": sum(entry.values()), "learning_rate": 1e-4, "epoch": step / steps, "step": step}
        state.log_history.append(entry)
    state.global_step = steps
    return state


def write_baseline_runs(runs_dir: Path) -> None:
    """`instructflip/`: a finished run's train_log.json (the jobs' export of `log_history`); `caption/`: a run
    still training, whose only log is its newest checkpoint's trainer_state.json."""
    finished = runs_dir / "instructflip"
    finished.mkdir(parents=True)
    (finished / "train_log.json").write_text(json.dumps(baseline_state(5, BASELINE_TERMS).log_history))
    for step in (2, 4):
        checkpoint = runs_dir / "caption" / "checkpoints" / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        baseline_state(step, ("loss_cls", "loss_caption")).save_to_json(
            str(checkpoint / "trainer_state.json")
        )

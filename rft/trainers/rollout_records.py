"""Per-step rollout records for the rollout inspector: every episode GRPO trained on, with its rewards.

Layout under the recorder's folder (`runs/<name>/grpo/rollouts/` from launch/grpo.py):

    step_000001.jsonl            one JSON object per episode of the step's generation batch
    images/step_000001/e003_1.png  image 1 of episode 3 (0 is the dataset image, then each tool output)

A record holds the episode's group (the dataset image it was sampled for), label, every model turn, its tool
calls (name, arguments, whether they ran, the error), why it stopped, the weights version that sampled it,
each reward column and component, the total reward and the advantage. A step's file is written to a
temporary name and renamed, so a reader never sees half a step; a resumed run rewrites the steps it redoes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rft.outputs import replaced_atomically, write_text_atomically
from rft.rollout.episode import Episode


def step_name(step: int) -> str:
    return f"step_{step:06d}"


class RolloutRecorder:
    """Writes the records of one step at a time; `save_images=False` keeps text and rewards only."""

    def __init__(self, out_dir: Path | str, *, save_images: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.save_images = save_images

    def record(
        self,
        *,
        step: int,
        episodes: Sequence[Episode],
        labels: Sequence[str],
        rewards: Mapping[str, Sequence[float]],
        totals: Sequence[float],
        advantages: Sequence[float],
        group_size: int,
        weights_version: int,
        attributes: Sequence[Mapping[str, Any]] | None = None,
    ) -> Path:
        """Write the step's records; returns the JSONL path. Every sequence is aligned with `episodes`;
        `attributes` (the example's attack type and domain, where known) are added to each record as is."""
        count = len(episodes)
        attributes = attributes if attributes is not None else [{}] * count
        aligned = {"labels": labels, "totals": totals, "advantages": advantages, "attributes": attributes}
        for name, values in {**aligned, **rewards}.items():
            if len(values) != count:
                raise ValueError(f"{name} has {len(values)} values for {count} episodes")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps(
                {
                    "step": step,
                    "index": i,
                    "group": i // group_size,
                    "label": str(labels[i]),
                    "turns": list(episode.turns),
                    "tool_calls": [tool_call_record(call) for call in episode.tool_calls],
                    "stop_reason": episode.stop_reason,
                    "completion_tokens": episode.completion_tokens,
                    "weights_version": weights_version,
                    "rewards": {name: float(values[i]) for name, values in rewards.items()},
                    "reward": float(totals[i]),
                    "advantage": float(advantages[i]),
                    "images": self._save_images(step, i, episode),
                    **attributes[i],
                }
            )
            for i, episode in enumerate(episodes)
        ]
        return write_text_atomically(
            self.out_dir / f"{step_name(step)}.jsonl", "".join(line + "\n" for line in lines)
        )

    def _save_images(self, step: int, index: int, episode: Episode) -> list[str]:
        if not self.save_images:
            return []
        folder = self.out_dir / "images" / step_name(step)
        folder.mkdir(parents=True, exist_ok=True)
        names = []
        for k, image in enumerate(episode.images):
            name = f"e{index:03d}_{k}.png"
            with replaced_atomically(folder / name, "wb") as handle:
                image.save(handle, format="PNG")
            names.append(f"images/{step_name(step)}/{name}")
        return names


def tool_call_record(call: Any) -> dict[str, Any]:
    return {"name": call.name, "arguments": call.arguments, "ok": call.ok, "error": call.error}

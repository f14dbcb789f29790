"""The scalars a run logged to TensorBoard (rft.trainers.checkpoints.TensorBoardIn): KL, entropy, losses,
time per step, target-domain HTER/AUC, and every other metric the trainer logs."""

from __future__ import annotations

import math
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# Keep every point: a long run's curves must not be subsampled away (TensorBoard keeps 1000 by default).
_ALL_SCALARS = {"scalars": 0, "tensors": 0, "images": 1, "histograms": 1, "compressedHistograms": 1}
# transformers' TensorBoard callback puts training logs under "train/"; the curves name them without it.
_PREFIX = "train/"


class ScalarsReader:
    """Scalars of one run's tensorboard/ folder, re-read incrementally on each call."""

    def __init__(self, run_dir: Path) -> None:
        self.folder = run_dir / "tensorboard"
        self._accumulators: dict[Path, EventAccumulator] = {}

    def _event_folders(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted({path.parent for path in self.folder.rglob("events.out.tfevents.*") if path.is_file()})

    def series(self) -> dict[str, dict[int, float]]:
        """Tag (without the "train/" prefix) -> step -> value; a later event at a step replaces an earlier."""
        result: dict[str, dict[int, float]] = {}
        for folder in self._event_folders():
            accumulator = self._accumulators.get(folder)
            if accumulator is None:
                accumulator = EventAccumulator(str(folder), size_guidance=_ALL_SCALARS)
                self._accumulators[folder] = accumulator
            try:
                accumulator.Reload()
            except Exception:  # a truncated event file while it is being written: read again next poll
                continue
            for tag in accumulator.Tags().get("scalars", []):
                name = tag.removeprefix(_PREFIX)
                points = result.setdefault(name, {})
                for event in accumulator.Scalars(tag):
                    points[int(event.step)] = float(event.value)
        return result


def is_nan(value: float) -> bool:
    return math.isnan(value) or math.isinf(value)

"""Target-domain evaluation during GRPO: every `eval.steps` optimizer steps, the policy's fast and final answers
on the protocol's target domains (rft.eval.target), logged to the tracker and kept as JSON."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback

from rft.eval.sample_records import split_samples, write_samples
from rft.eval.target import flatten_metrics
from rft.outputs import write_json


class TargetEvaluation(TrainerCallback):
    """Runs `evaluate(trainer)` (a closure over the targets and settings) every `every` steps, logs the
    flattened metrics (`target/<domain>/<fast|final>/<hter|auc>`) and writes `out_dir/eval_step_<N>.json`;
    per-sample rows, when the evaluation keeps them, go to `out_dir/samples_step_<N>.jsonl` (the dashboard's
    evaluation view) and are left out of the returned results.
    The trainer is attached after it is built (`attach`), since the callback is one of its arguments."""

    def __init__(self, *, evaluate: Callable[[Any], dict], every: int | None, out_dir: Path) -> None:
        self.evaluate = evaluate
        self.every = every
        self.out_dir = Path(out_dir)
        self.trainer: Any = None

    def attach(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        # The last step is evaluated by the launcher after training, once the policy is exported.
        if self.every and state.global_step % self.every == 0 and state.global_step < state.max_steps:
            should_log = control.should_log
            self.run(state.global_step)
            # Logging resets `should_log`, which would drop this step's own training entry.
            control.should_log = should_log

    def run(self, step: int) -> dict:
        if self.trainer is None:
            raise RuntimeError("TargetEvaluation.attach(trainer) was not called")
        self.trainer.sync_weights()  # the episode source must sample the policy being evaluated
        results, samples = split_samples(self.evaluate(self.trainer))
        # transformers' own `log`: TRL's would also flush the training metrics gathered since the last
        # logging step into this entry, leaving the step's own entry without them.
        Trainer.log(self.trainer, flatten_metrics(results))
        if self.trainer.accelerator.is_main_process:
            write_json(self.out_dir / f"eval_step_{step:06d}.json", results)
            if samples:
                write_samples(self.out_dir, step, samples)
        return results

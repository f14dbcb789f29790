"""The folders of a run: where a stage resumes from, when a fresh start over an earlier run is refused or
replaced, and which earlier stage's export a later stage starts from (shared by SFT and GRPO).

A stage folder (run.output_dir/run.name/<stage>) is marked as a training run's when a run starts in it
(rft.outputs' marker); --overwrite deletes only a folder so marked, never one the project did not make."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from rft.errors import ResumeError, RunSetupError
from rft.outputs import MARKER, PARTIAL_SUFFIX, made_by, write_marker
from rft.trainers.checkpoints import latest_checkpoint

STAGE_COMMAND = "training run"  # named in the marker of a stage folder


def resume_checkpoint(resume: str | None, checkpoints_dir: Path) -> str | None:
    """The checkpoint to resume from: None (start fresh), "latest" (the newest complete one under
    `checkpoints_dir`) or a checkpoint folder; refused in one line when there is none."""
    if resume is None:
        return None
    if resume == "latest":
        found = latest_checkpoint(checkpoints_dir)
        if found is None:
            raise ResumeError(
                f"--resume: no complete checkpoint in {checkpoints_dir}; start without --resume"
            )
        return str(found)
    if not (Path(resume) / "trainer_state.json").is_file():
        raise ResumeError(f"--resume: '{resume}' is not a checkpoint folder (no trainer_state.json)")
    return resume


def earlier_run_outputs(out_dir: Path) -> list[str]:
    """What an earlier run left in a stage's folder (checkpoints, events, records, model), its config, marker
    and files being written (another rank's marker or config) aside."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(
        path.name
        for path in out_dir.iterdir()
        if path.name not in ("config.yaml", MARKER) and not path.name.endswith(PARTIAL_SUFFIX)
    )


def check_fresh_start(out_dir: Path, *, resume: str | None, overwrite: bool) -> bool:
    """Whether a run starting in `out_dir` must first remove an earlier run's outputs (`overwrite`).

    A fresh start over an earlier run is refused in one line: its checkpoints would be rotated by step
    number with the new ones (a later --resume could continue the old run) and its TensorBoard curves would
    mix with the new run's."""
    if resume is not None:
        return False
    left = earlier_run_outputs(out_dir)
    if not left:
        return False
    if overwrite:
        check_deletable(out_dir)
        return True
    raise RunSetupError(
        f"{out_dir} holds an earlier run ({', '.join(left)}); continue it with --resume, replace it with "
        "--overwrite, or choose another run.name"
    )


def check_deletable(out_dir: Path) -> None:
    """Refuse, in one line, to delete a stage folder that no training run made (--overwrite)."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        raise RunSetupError(
            f"--overwrite: {out_dir} is a symbolic link; delete what it points to yourself or choose another "
            "run.name"
        )
    if made_by(out_dir) != STAGE_COMMAND:
        raise RunSetupError(
            f"--overwrite: {out_dir} was not made by a training run of this project (no {MARKER} in it); "
            "delete it yourself or choose another run.name"
        )


def remove_earlier_run(out_dir: Path, *, remove: bool, state: Any) -> None:
    """Delete an earlier run's outputs when `remove` (`check_fresh_start` said so), then create the stage
    folder and mark it as a training run's: the main process does it, every process waits. Call it on every
    process whatever its `remove`: a process that checked after the deletion saw nothing to remove, and must
    still reach the barrier."""
    out_dir = Path(out_dir)
    if state.is_main_process:
        if remove:
            check_deletable(out_dir)
            print(f"--overwrite: deleting the earlier run in {out_dir}")
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if made_by(out_dir) != STAGE_COMMAND:
            write_marker(out_dir, STAGE_COMMAND)
    state.wait_for_everyone()


def policy_dir(*, init_from: str, run_dir: Path) -> Path:
    """The run's SFT stage export a later stage starts from (`init_from` sft_stage1 or sft_stage2), refused in
    one line when that stage has not been run."""
    exported = Path(run_dir) / init_from / "model"
    if not (exported / "config.json").is_file():
        stage = init_from.removeprefix("sft_stage")
        raise RunSetupError(
            f"init_from is {init_from} but {exported} holds no model; run `python launch/sft.py --config "
            f"<config> --stage {stage}` first, or start from the model section (init_from: model)"
        )
    return exported

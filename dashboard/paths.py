"""Which folders are runs, and the one gate through which a request reaches a file inside a run.

A request never builds a path from its own text alone: a run is named by its id (a folder found under
RUNS_DIR at start-up or on a later poll) and a file by a path relative to that run, which must stay inside
it after every symlink is followed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from dashboard.logs import is_log_file, newest_checkpoint_state

# A folder is a run when it holds one of these folders (launch/grpo.py and launch/sft.py write them) or a
# training log (dashboard.logs.is_log_file: train_log.json, trainer_state.json, *log*.jsonl, ...; or a
# checkpoint's trainer_state.json while it trains).
RUN_MARKERS = ("rollouts", "tensorboard", "eval")
# Folders inside a run that are never runs themselves (a checkpoint holds a trainer_state.json).
NOT_RUNS = re.compile(r"^(checkpoints|checkpoint-\d+|\..*)$")
# runs/<name>/grpo/ is two levels under RUNS_DIR; a little more allows a folder of experiment groups.
MAX_RUN_DEPTH = 4


class PathRefused(ValueError):
    """A requested path that is not a file inside a run folder."""


def find_runs(runs_dir: Path) -> dict[str, Path]:
    """Run id (its path relative to `runs_dir`, "." for `runs_dir` itself) -> its resolved folder. Symlinked
    folders are not followed, so a run is always a real folder under `runs_dir`."""
    root = runs_dir.resolve()
    runs: dict[str, Path] = {}
    for folder, subfolders, files in os.walk(root, followlinks=False):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        if is_run(here, files):
            runs[here.relative_to(root).as_posix()] = here
        if depth >= MAX_RUN_DEPTH:
            subfolders.clear()
        subfolders[:] = sorted(
            name for name in subfolders if name not in RUN_MARKERS and not NOT_RUNS.match(name)
        )
    return runs


def is_run(folder: Path, files: list[str]) -> bool:
    if any((folder / marker).is_dir() and not (folder / marker).is_symlink() for marker in RUN_MARKERS):
        return True
    return any(is_log_file(folder / name) for name in files) or newest_checkpoint_state(folder) is not None


def file_in_run(run_dir: Path, relative: str) -> Path:
    """The regular file `relative` names inside `run_dir`; refuses an absolute path, `..`, a backslash and a
    symlink (anywhere on the way) that leads out of the run."""
    if not relative or "\x00" in relative or "\\" in relative:
        raise PathRefused("path must be a non-empty relative path with '/' separators")
    parts = PurePosixPath(relative)
    if parts.is_absolute() or relative.startswith("~"):
        raise PathRefused("path must be relative to the run folder, not absolute")
    if ".." in parts.parts:
        raise PathRefused("path must not contain '..'")
    root = run_dir.resolve()
    try:
        target = (root / parts).resolve(strict=True)
    except (OSError, RuntimeError) as error:  # missing, or a symlink loop
        raise PathRefused("no such file in the run folder") from error
    if not target.is_relative_to(root):
        raise PathRefused("path leads outside the run folder")
    if not target.is_file():
        raise PathRefused("path is not a file")
    return target

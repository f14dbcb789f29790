"""The run-folder policy: a fresh start over an earlier run is refused, and --overwrite deletes only a stage
folder that a run of this project made."""

from __future__ import annotations

import pytest

from rft.errors import RunSetupError
from rft.trainers.run_folders import check_fresh_start, earlier_run_outputs, remove_earlier_run


class SingleProcess:
    is_main_process = True

    def wait_for_everyone(self) -> None:
        pass


def start(stage, *, resume=None, overwrite=False):
    """What a launcher does before training: check, then remove or keep, then mark the stage folder."""
    remove = check_fresh_start(stage, resume=resume, overwrite=overwrite)
    remove_earlier_run(stage, remove=remove, state=SingleProcess())


def test_overwrite_refuses_a_stage_folder_no_run_made(tmp_path):
    stage = tmp_path / "runs" / "r" / "grpo"
    (stage / "precious").mkdir(parents=True)
    (stage / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(RunSetupError) as error:
        start(stage, overwrite=True)
    assert str(error.value) == (
        f"--overwrite: {stage} was not made by a training run of this project (no .fas-rft.json in it); "
        "delete it yourself or choose another run.name"
    )
    assert (stage / "precious" / "notes.txt").read_text() == "keep me"


def test_overwrite_deletes_an_earlier_run_of_the_project(tmp_path):
    stage = tmp_path / "runs" / "r" / "grpo"
    start(stage)  # a first run marks the folder
    (stage / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    assert earlier_run_outputs(stage) == ["checkpoints"]  # the marker is not an output
    with pytest.raises(RunSetupError, match="holds an earlier run"):
        start(stage)
    start(stage, overwrite=True)
    assert earlier_run_outputs(stage) == [] and stage.is_dir()
    start(stage)  # marked again: a later --overwrite may delete it


def test_a_resumed_run_is_marked_as_the_projects(tmp_path):
    stage = tmp_path / "runs" / "r" / "sft_stage1"
    (stage / "checkpoints").mkdir(parents=True)  # a run from before the marker existed
    start(stage, resume="latest-checked-elsewhere")
    (stage / "checkpoints" / "checkpoint-1").mkdir()
    start(stage, overwrite=True)
    assert earlier_run_outputs(stage) == []

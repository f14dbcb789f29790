"""One error base for everything a user can get wrong, said in one line by `run_command`; bad values shown
at a bounded size, without building their full repr."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rft.annotate.store import StoreError
from rft.annotate.teacher import TeacherFatal
from rft.cli import main as rft_main
from rft.config import ConfigError
from rft.data.importers.common import DatasetImportError
from rft.errors import (
    TERMINATED_EXIT_CODE,
    ResumeError,
    RftError,
    RunSetupError,
    run_command,
    short_repr,
    short_text,
)
from rft.eval.scored_samples import InputError
from rft.eval.scores_csv import CsvError
from rft.trainers.grpo import UnsupportedSetting
from rft.trainers.sft_data import SFTDataError


@pytest.mark.parametrize(
    "error_class",
    [
        ConfigError,
        RunSetupError,
        ResumeError,
        SFTDataError,
        UnsupportedSetting,
        DatasetImportError,
        StoreError,
        TeacherFatal,
        InputError,
        CsvError,
    ],
)
def test_every_user_facing_error_is_an_rft_error(error_class):
    assert issubclass(error_class, RftError)


def raises(error: Exception):
    def command(*_argv: list[str]) -> int:
        raise error

    return command


def test_an_rft_error_is_one_line_and_exit_code_2(capsys):
    assert run_command(raises(ConfigError("grpo.lr: did you mean 'learning_rate'?"))) == 2
    assert capsys.readouterr().err == "error: grpo.lr: did you mean 'learning_rate'?\n"
    assert run_command(raises(ResumeError("no complete checkpoint")), prog="rft metrics") == 2
    assert capsys.readouterr().err == "rft metrics: error: no complete checkpoint\n"


def test_the_exit_code_passes_and_a_bug_keeps_its_traceback():
    assert run_command(lambda: 0) == 0
    assert run_command(lambda: 3) == 3
    with pytest.raises(KeyError):
        run_command(raises(KeyError("a bug")))


def test_the_rft_cli_says_an_rft_error_a_command_lets_through_in_one_line(capsys, monkeypatch):
    from rft.models import tiny

    monkeypatch.setattr(tiny, "main", raises(RunSetupError("model.path 'x' is not a local checkpoint")))
    assert rft_main(["tiny-model"]) == 2
    assert capsys.readouterr().err == "rft tiny-model: error: model.path 'x' is not a local checkpoint\n"


def test_short_values_are_shown_whole():
    assert (
        short_repr("eight") == "'eight'"
        and short_repr(3.5) == "3.5"
        and short_repr({"a": [1]}) == "{'a': [1]}"
    )


def test_a_long_string_keeps_its_start_and_says_its_length():
    assert short_repr("x" * 1000) == repr("x" * 200) + "…(1000 chars)"
    assert short_text("y" * 300, 10) == "yyyyyyyyyy…(300 chars)"


def test_a_huge_shared_structure_is_shown_short_and_fast():
    value = ["lol"] * 9
    for _ in range(8):  # 9**9 strings, a repr of about 3 GB
        value = [value] * 9
    started = time.perf_counter()
    shown = short_repr(value)
    assert time.perf_counter() - started < 0.1 and len(shown) <= 201


STOPPED_COMMAND = """\
import sys, time
from pathlib import Path
from rft.errors import run_command

def command():
    try:
        try:
            print("ready", flush=True)
            time.sleep(120)
        except Exception:  # a broad handler on the way must not swallow the stop
            return 0
    finally:
        print("closing", flush=True)
        time.sleep(2)  # a second SIGTERM arrives here and must not cut the clean-up short
        Path(sys.argv[1]).write_text("closed")
    return 0

sys.exit(run_command(command, prog="probe"))
"""


def test_a_sigterm_stops_a_command_through_its_finally_blocks(tmp_path):
    """`kill` or a scheduler's stop runs the command's clean-up (an in-process vLLM engine's shutdown sits in
    one) to its end, a second SIGTERM notwithstanding, says so in one line and exits 143, as a shell reports
    a SIGTERM."""
    marker = tmp_path / "closed"
    process = subprocess.Popen(
        [sys.executable, "-c", STOPPED_COMMAND, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        assert process.stdout.readline() == "closing\n"
        process.send_signal(signal.SIGTERM)  # a launcher and a shell may both send one
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == TERMINATED_EXIT_CODE == 143
    assert marker.read_text() == "closed"
    assert stderr.splitlines()[-1] == "probe: stopped by SIGTERM"


def test_the_sigterm_handler_is_put_back_after_the_command():
    before = signal.getsignal(signal.SIGTERM)
    assert run_command(lambda: 0) == 0
    assert signal.getsignal(signal.SIGTERM) is before

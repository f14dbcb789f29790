"""`rft dashboard`: its help, one-line refusals of bad arguments, and the real command serving a page."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from dashboard_server import free_port

from rft.cli import main as rft_main


def test_help_names_the_runs_folder_and_the_flags(capsys):
    with pytest.raises(SystemExit) as done:
        rft_main(["dashboard", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "RUNS_DIR" in text and "--port" in text and "--host" in text


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["/no/such/folder"], "RUNS_DIR"),
        (["{runs}", "--host", "0.0.0.0"], "--host"),
        (["{runs}", "--port", "70000"], "--port"),
        (["{runs}", "--malformed-share", "2"], "--malformed-share"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys, arguments: list[str], named: str):
    argv = [a.replace("{runs}", str(tmp_path)) for a in arguments]
    assert rft_main(["dashboard", *argv]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("rft dashboard: error:") and named in error and "\n" not in error


def test_the_command_serves_the_page(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "rft.cli", "dashboard", str(tmp_path), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        page = None
        for _ in range(600):  # the command imports matplotlib, TensorBoard and FastAPI first
            try:
                page = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.2)
        assert page is not None and page.status_code == 200 and "rft dashboard" in page.text
        assert requests.get(f"http://127.0.0.1:{port}/api/state", timeout=10).json()["runs"] == []
    finally:
        server.terminate()
        server.wait(timeout=30)

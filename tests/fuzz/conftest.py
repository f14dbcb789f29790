"""Both services as an operator runs them on one machine, for the fuzzer and the port check: `python -m
reward_service` (its own Ray, loopback only) and `python -m rollout_server` on the tiny Qwen2.5-VL with its
tools run by that reward service, each with a token, each in a process group of its own, started once per
session and stopped at its end."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
ROLLOUT_TOKEN = "fuzz-rollout-token"
REWARD_TOKEN = "fuzz-reward-token"


def _rollout_helpers():
    """tests/rollout_server/conftest.py as a module: free_port, wait_until_ready."""
    path = REPO / "tests" / "rollout_server" / "conftest.py"
    spec = importlib.util.spec_from_file_location("fuzz_rollout_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _rollout_helpers()
# The tests of this folder import its harness (`from harness import fuzz_service`).
# Appended, not inserted: `conftest` must keep naming tests/rollout_server/conftest.py for the modules that import it.
sys.path.append(str(Path(__file__).parent))


@dataclass(frozen=True)
class Running:
    """A service started by this session: its URL, its token and its root process."""

    url: str
    token: str
    process: subprocess.Popen

    def processes(self) -> list[psutil.Process]:
        """The service's process and every process under it (vLLM's engine, Ray's daemons and workers)."""
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]


def _start(argv: list[str], env: dict[str, str], token: str) -> Running:
    port = helpers.free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", *argv, "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        start_new_session=True,
    )
    return Running(f"http://127.0.0.1:{port}", token, process)


def _stop(service: Running) -> None:
    """SIGTERM to the service (it stops what it started), then SIGKILL to whatever of its group is left."""
    started = service.processes() if service.process.poll() is None else []
    service.process.send_signal(signal.SIGTERM)
    try:
        service.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        service.process.kill()
    _, alive = psutil.wait_procs(started[1:], timeout=30)
    for process in alive:
        process.kill()


@pytest.fixture(scope="session")
def reward_service() -> Iterator[Running]:
    service = _start(
        ["reward_service", "--replicas", "1", "--num-cpus", "1"],
        {"RFT_REWARD_TOKEN": REWARD_TOKEN},
        REWARD_TOKEN,
    )
    try:
        helpers.wait_until_ready(service.url, service.process, timeout_s=300)
        yield service
    finally:
        _stop(service)


@pytest.fixture(scope="session")
def tiny_qwen_dir(model_cache: Path) -> Path:
    from rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny")


@pytest.fixture(scope="session")
def rollout_server(tiny_qwen_dir: Path, reward_service: Running) -> Iterator[Running]:
    argv = ["rollout_server", "--model", str(tiny_qwen_dir), "--reward-service", reward_service.url]
    env = {"RFT_ROLLOUT_TOKEN": ROLLOUT_TOKEN, "RFT_REWARD_TOKEN": REWARD_TOKEN}
    service = _start(argv, env, ROLLOUT_TOKEN)
    try:
        helpers.wait_until_ready(service.url, service.process)
        yield service
    finally:
        _stop(service)

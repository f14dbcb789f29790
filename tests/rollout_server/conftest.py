"""A rollout worker serving the protocol-following tiny model (tests/conftest.py), one per test session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

# The tests of this folder import its helpers (`from conftest import TOKEN`, `protocol_model`).
sys.path.insert(0, str(Path(__file__).parent))

TOKEN = "test-token"
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, proc: subprocess.Popen, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rollout server exited with code {proc.returncode}")
        try:
            if requests.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} not ready after {timeout_s} s")


def start_server(model_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    # Test hooks on: a weights payload may ask for a fault injected midway (rollout_server.weights).
    env = dict(os.environ, RFT_ROLLOUT_TOKEN=TOKEN, RFT_ROLLOUT_TEST_HOOKS="1")
    argv = [sys.executable, "-m", "rollout_server", "--model", str(model_dir), "--port", str(port), *extra]
    if "--gpu-memory-utilization" not in extra and "--kv-cache-gib" not in extra:
        # vLLM's CPU default (0.2 of RAM, 4.7 GiB here) per engine: a tiny model needs a few MB of KV cache, and
        # several test servers at once (the session's, a pool's two workers) would not fit on a 24 GiB machine.
        # An explicit size, not a smaller share: vLLM subtracts the worker's RSS from the share (CI: negative).
        argv += ["--kv-cache-gib", "0.25"]
    return subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True)


def stop_server(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def rollout_url(protocol_model_dir: Path) -> Iterator[str]:
    port = free_port()
    proc = start_server(protocol_model_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, proc)
        yield url
    finally:
        stop_server(proc)

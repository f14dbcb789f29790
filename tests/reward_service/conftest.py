"""The real reward services the module's tests share: one in this process (Ray Serve on this machine,
loopback only, no token), and `python -m reward_service` with a token and a 1 MiB body limit in a process
of its own (its own Ray), stopped with SIGTERM at the end; nothing it started may outlive it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest
import requests

from reward_service.api import TOKEN_ENV


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def service_url() -> Iterator[str]:
    from reward_service.app import ServiceSettings, start, stop

    settings = ServiceSettings(replicas=2, replica_cpus=0.5, request_timeout_s=120)
    url = start(settings, host="127.0.0.1", port=free_port(), num_cpus=2)
    yield url
    stop()


@dataclass(frozen=True)
class SecuredService:
    url: str
    token: str
    process: subprocess.Popen
    max_body_bytes: int = 1 << 20

    def processes(self) -> list[psutil.Process]:
        """The service's process and every process under it (Ray's)."""
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]


def wait_ready(service: SecuredService, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert service.process.poll() is None, f"the service exited with {service.process.returncode}"
        try:
            if requests.get(service.url + "/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the service at {service.url} was not ready within {timeout_s} s")


@pytest.fixture(scope="module")
def secured_service() -> Iterator[SecuredService]:
    port, token = free_port(), "t0k-" + uuid.uuid4().hex
    command = [sys.executable, "-m", "reward_service", "--port", str(port), "--max-body-mb", "1"]
    command += ["--replicas", "1", "--num-cpus", "1"]
    # The token through the environment, as in production: a flag would show in `ps`.
    process = subprocess.Popen(command, env={**os.environ, TOKEN_ENV: token})
    service = SecuredService(f"http://127.0.0.1:{port}", token, process)
    started: list[psutil.Process] = []
    try:
        wait_ready(service)
        yield service
        started = service.processes()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
    _, alive = psutil.wait_procs(started[1:], timeout=60)
    assert not alive, f"still running after the service stopped: {[p.pid for p in alive]}"

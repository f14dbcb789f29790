"""Two workers on one machine behind one client; one is killed in the middle of a batch."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import TOKEN, free_port, start_server, stop_server, wait_until_ready
from protocol_model import protocol_image

from rft.rollout.sampling import Sampling
from rollout_server.client import RolloutClient

# The first test also waits for the session's protocol model and a vLLM start-up.
pytestmark = pytest.mark.timeout(1800)


def _worker_pid(pool_pid: int, port: int) -> int:
    for child in psutil.Process(pool_pid).children():
        if str(port) in child.cmdline():
            return child.pid
    raise LookupError(f"no worker on port {port}")


def test_a_killed_worker_loses_no_prompt(protocol_model_dir: Path) -> None:
    port = free_port()
    while free_port() == port + 1:  # the pool takes two consecutive ports
        port = free_port()
    pool = start_server(protocol_model_dir, port, "--workers", "2")
    urls = [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]
    try:
        for url in urls:
            wait_until_ready(url, pool)
        client = RolloutClient(urls, token=TOKEN, prompts_per_request=1)
        images = [protocol_image(seed) for seed in range(8)]
        result: dict = {}

        def run_batch() -> None:
            result["groups"], _ = client.episodes(images, n=2, sampling=Sampling(max_tokens=64))

        batch = threading.Thread(target=run_batch)
        batch.start()
        time.sleep(1.0)  # requests are in flight on both workers
        os.kill(_worker_pid(pool.pid, port + 1), signal.SIGKILL)
        batch.join(timeout=600)
        assert not batch.is_alive()
        groups = result["groups"]
        assert len(groups) == 8 and all(len(group) == 2 for group in groups)
        assert all(episode.turns for group in groups for episode in group)
        # The killed worker is a suspect now (the pool restarts it, the client probes it back later).
        assert urls[0] in client.alive and client.failovers >= 1
    finally:
        stop_server(pool)

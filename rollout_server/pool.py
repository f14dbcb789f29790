"""`--workers N` on one machine: N worker processes on consecutive ports, one GPU each when GPUs exist.

The pool watches each worker two ways: its process (did it exit?) and its `/readyz` (does its engine still
serve? a worker whose vLLM engine died or wedged stays alive as a process but fails readiness). A worker
that was ready once and then exits, or fails `UNREADY_PROBES` probes in a row, is stopped and started
again; one that exits before it was ever ready is reported and left down (its configuration is wrong, a
restart would fail the same way). `RolloutClient` meanwhile sends to the others and probes the restarted
worker back into service. On a Ray cluster, start one `python -m rollout_server` per GPU node
(deploy/README.md) and give the client every URL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
import requests

from rollout_server.cli import TOKEN_ENV, worker_argv

PROBE_INTERVAL_S = 5.0
# Longer than the server's own readiness probe (rollout_server.service.READY_PROBE_TIMEOUT_S).
PROBE_TIMEOUT_S = 15.0
UNREADY_PROBES = 3
STOP_TIMEOUT_S = 30.0


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no usable CUDA runtime: CPU workers
        return 0


@dataclass
class Worker:
    port: int
    proc: subprocess.Popen
    was_ready: bool = False
    failed_probes: int = 0
    restarts: int = 0


class WorkerPool:
    """Worker processes started by `start(port)`, probed at `http://{probe_host}:{port}/readyz`."""

    def __init__(
        self,
        start: Callable[[int], subprocess.Popen],
        ports: list[int],
        *,
        probe_host: str = "127.0.0.1",
        unready_probes: int = UNREADY_PROBES,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self.start = start
        self.probe_host = probe_host
        self.unready_probes = unready_probes
        self.probe_timeout_s = probe_timeout_s
        self.workers = {port: Worker(port, start(port)) for port in ports}

    def check(self) -> None:
        """One round: restart the workers that exited or stopped serving, drop those that never served."""
        for port, worker in list(self.workers.items()):
            code = worker.proc.poll()
            if code is not None and not worker.was_ready:
                _report(f"worker on port {port} exited with code {code} before it was ready; left down")
                del self.workers[port]
            elif code is not None:
                self._restart(worker, f"exited with code {code}")
            elif self._ready(port):
                worker.was_ready, worker.failed_probes = True, 0
            elif worker.was_ready:  # failing after serving: the engine died or wedged inside a live process
                worker.failed_probes += 1
                if worker.failed_probes >= self.unready_probes:
                    self._restart(worker, f"/readyz failed {worker.failed_probes} times in a row")

    def stop(self) -> None:
        for worker in self.workers.values():
            _stop_process(worker.proc)

    def _ready(self, port: int) -> bool:
        try:
            reply = requests.get(f"http://{self.probe_host}:{port}/readyz", timeout=self.probe_timeout_s)
        except requests.RequestException:
            return False
        return reply.status_code == 200

    def _restart(self, worker: Worker, why: str) -> None:
        _report(f"worker on port {worker.port} {why}; restarting it")
        _stop_process(worker.proc)
        worker.proc = self.start(worker.port)
        worker.was_ready, worker.failed_probes = False, 0
        worker.restarts += 1


def _report(message: str) -> None:
    print(f"rollout_server: {message}", file=sys.stderr, flush=True)


def _stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S, and the same for whatever the worker started (vLLM's
    engine process), so a wedged worker leaves nothing behind."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def run_local_pool(args: argparse.Namespace) -> int:
    gpus = _gpu_count()

    def start(port: int) -> subprocess.Popen:
        env = dict(os.environ)
        if args.token:
            env[TOKEN_ENV] = args.token  # through the environment, not the visible command line
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = str((port - args.port) % gpus)
        return subprocess.Popen(worker_argv(args, port), env=env)

    ports = [args.port + index for index in range(args.workers)]
    probe_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    pool = WorkerPool(start, ports, probe_host=probe_host)
    urls = " ".join(f"http://{args.host}:{port}" for port in ports)
    print(f"rollout_server: {args.workers} workers starting: {urls}", flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping and pool.workers:
            pool.check()
            deadline = time.monotonic() + PROBE_INTERVAL_S
            while not stopping and time.monotonic() < deadline:  # answer SIGTERM within half a second
                time.sleep(0.5)
    finally:
        pool.stop()
    return 0 if stopping else 1

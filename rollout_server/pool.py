"""`--workers N` on one machine: N worker processes on consecutive ports, one GPU each when GPUs exist.

The pool reports a worker that exits and keeps the others serving; `RolloutClient` stops sending to the
dead one. On a Ray cluster, start one `python -m rollout_server` per GPU node (deploy/README.md) and give
the client every URL.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from rollout_server.cli import TOKEN_ENV, worker_argv


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no usable CUDA runtime: CPU workers
        return 0


def run_local_pool(args: argparse.Namespace) -> int:
    gpus = _gpu_count()
    procs: dict[int, subprocess.Popen] = {}
    for index in range(args.workers):
        env = dict(os.environ)
        if args.token:
            env[TOKEN_ENV] = args.token  # through the environment, not the visible command line
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
        port = args.port + index
        procs[port] = subprocess.Popen(worker_argv(args, port), env=env)
    urls = " ".join(f"http://{args.host}:{port}" for port in procs)
    print(f"rollout_server: {args.workers} workers starting: {urls}", flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping and procs:
            for port, proc in list(procs.items()):
                if proc.poll() is not None:
                    print(
                        f"rollout_server: worker on port {port} exited with code {proc.returncode}",
                        file=sys.stderr,
                    )
                    del procs[port]
            time.sleep(0.5)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=30)
    return 0 if stopping else 1

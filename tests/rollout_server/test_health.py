"""Honest health (issue #14): /readyz fails when the engine cannot serve, and the worker pool restarts a
worker whose engine died inside a live process, not only one whose process exited."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import requests
from conftest import free_port, stop_server, wait_until_ready
from fastapi.testclient import TestClient
from test_app import TOKEN, fake_engine

from rollout_server import service as service_module
from rollout_server.app import create_app
from rollout_server.pool import WorkerPool

HERE = Path(__file__).parent


# -- /readyz over a scripted engine ------------------------------------------------------------------------
def test_readyz_probes_the_engine_and_trusts_a_recent_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = fake_engine()
    probes: list[float] = []
    outcome: dict[str, Exception | None] = {"error": None}

    async def check_serving(timeout_s: float) -> None:
        probes.append(timeout_s)
        if outcome["error"] is not None:
            raise outcome["error"]
        engine.sampler.last_served = time.monotonic()

    engine.sampler.check_serving = check_serving
    with TestClient(create_app(lambda: engine, token=TOKEN), raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 200 and len(probes) == 1
        assert client.get("/readyz").status_code == 200 and len(probes) == 1  # fresh: no second probe
        monkeypatch.setattr(service_module, "READY_FRESH_S", 0.0)
        outcome["error"] = RuntimeError("EngineCore died")
        reply = client.get("/readyz")
        assert reply.status_code == 503 and "EngineCore died" in reply.json()["error"]
        assert client.get("/healthz").status_code == 200  # liveness is not readiness


# -- the pool's restart logic, with stand-in worker processes ----------------------------------------------
def stub_starter(folder: Path) -> Callable[[int], subprocess.Popen]:
    return lambda port: subprocess.Popen(
        [sys.executable, str(HERE / "ready_stub.py"), str(port), str(folder)]
    )


def check_until(pool: WorkerPool, port: int, condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the pool did not get there in time"
        time.sleep(0.2)
        pool.check()


def test_the_pool_restarts_a_live_worker_whose_readiness_fails(tmp_path: Path) -> None:
    port = free_port()
    pool = WorkerPool(stub_starter(tmp_path), [port], unready_probes=2, probe_timeout_s=5)
    worker = pool.workers[port]
    try:
        check_until(pool, port, lambda: worker.was_ready)
        first = worker.proc
        (tmp_path / f"sick-{first.pid}").touch()  # the process lives on, its readiness fails
        pool.check()
        assert worker.proc is first and worker.failed_probes == 1
        pool.check()
        assert worker.proc is not first and worker.restarts == 1 and first.poll() is not None
        check_until(pool, port, lambda: worker.was_ready)
        worker.proc.kill()  # a ready worker whose process exits is restarted too
        worker.proc.wait()
        pool.check()
        assert worker.restarts == 2
        check_until(pool, port, lambda: worker.was_ready)
    finally:
        pool.stop()


def test_a_worker_that_exits_before_it_was_ever_ready_is_left_down() -> None:
    port = free_port()
    pool = WorkerPool(lambda _: subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]), [port])
    pool.workers[port].proc.wait()
    pool.check()
    assert pool.workers == {}


# -- a real worker whose vLLM engine is killed -------------------------------------------------------------
@pytest.mark.timeout(1800)  # waits for the session's protocol model and two vLLM start-ups
def test_a_killed_engine_fails_readyz_and_the_pool_restarts_it(protocol_model_dir: Path) -> None:
    port = free_port()
    pool = start_pool_of_one(protocol_model_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, pool)
        worker = worker_process(pool.pid, port)
        engine_processes = worker.children(recursive=True)
        assert engine_processes, "the worker started no engine process"
        for process in engine_processes:
            os.kill(process.pid, signal.SIGKILL)
        reply = wait_for_readyz(url, 503, timeout_s=60)
        assert "not serving" in reply.json()["error"], reply.text
        assert worker.is_running()  # the process is alive: only readiness tells
        wait_until_ready(url, pool)
        assert worker_process(pool.pid, port).pid != worker.pid
        body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        assert requests.post(url + "/v1/chat/completions", json=body, timeout=120).status_code == 200
    finally:
        stop_server(pool)


def start_pool_of_one(model_dir: Path, port: int) -> subprocess.Popen:
    """`run_local_pool` supervising one worker (`python -m rollout_server` runs a lone worker unsupervised)."""
    code = "import sys; from rollout_server.cli import parse_args; from rollout_server.pool import run_local_pool; "
    code += "sys.exit(run_local_pool(parse_args(sys.argv[1:])))"
    argv = [sys.executable, "-c", code, "--model", str(model_dir), "--port", str(port)]
    env = dict(os.environ, RFT_ROLLOUT_TOKEN=TOKEN)
    return subprocess.Popen(argv, cwd=HERE.parents[1], env=env, start_new_session=True)


def worker_process(pool_pid: int, port: int) -> psutil.Process:
    """The pool's worker process serving `port` (the pool may have other children)."""
    (worker,) = [
        child
        for child in psutil.Process(pool_pid).children()
        if "rollout_server" in child.cmdline() and str(port) in child.cmdline()
    ]
    return worker


def wait_for_readyz(url: str, status: int, timeout_s: float) -> requests.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            reply = requests.get(url + "/readyz", timeout=30)
            if reply.status_code == status:
                return reply
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"/readyz never answered {status}"
        time.sleep(0.5)

"""RolloutClient tells the caller's fault (4xx: raised, the worker stays) from a failing worker (5xx, timeout,
refused connection: retried elsewhere, and probed back into service after a back-off). The failing workers
here are small real HTTP servers whose answers the test scripts; one test runs against the real server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from conftest import TOKEN
from PIL import Image

from rft.rollout.sampling import Sampling
from rollout_server.client import RolloutClient, RolloutServerError

IMAGE = Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8))
MESSAGES = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Real or spoof?"}]}]
REPLY = {
    "groups": [
        {
            "prompt_ids": [1],
            "completions": [{"token_ids": [2], "logprobs": [-0.1], "finish_reason": "stop", "text": "x"}],
        }
    ],
    "weights_version": 0,
}


class ScriptedWorker:
    """A worker on loopback: `answers` is the queue of statuses its next POSTs get (then 200s); `ready`
    is what /readyz says; `delay_s` delays every POST (a timeout, for a short client timeout)."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.ready = True
        self.delay_s = 0.0
        self.posts = 0
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None: ...

            def do_GET(self) -> None:
                self._answer(200 if worker.ready else 503, {"ready": worker.ready, "weights_version": 0})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                worker.posts += 1
                time.sleep(worker.delay_s)
                status = worker.answers.pop(0) if worker.answers else 200
                if self.path == "/v1/weights":
                    body = {"loaded": 1, "weights_version": worker.posts}
                else:
                    body = REPLY if status == 200 else {"error": f"scripted {status}"}
                self._answer(status, body)

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def workers() -> Iterator[list[ScriptedWorker]]:
    started = [ScriptedWorker(), ScriptedWorker()]
    yield started
    for worker in started:
        worker.server.shutdown()
        worker.server.server_close()


def sample(client: RolloutClient) -> None:
    assert len(client.samples(MESSAGES, [IMAGE], n=1).groups) == 1


def test_a_bad_request_is_raised_and_the_worker_stays(workers) -> None:
    (worker, _) = workers
    client = RolloutClient(worker.url, timeout_s=10)
    worker.answers = [400]
    with pytest.raises(RolloutServerError, match="400 scripted 400"):
        sample(client)
    assert client.alive == [worker.url] and not client.suspects and worker.posts == 1
    sample(client)


def test_a_5xx_worker_is_retried_elsewhere_and_probed_back(workers) -> None:
    client = RolloutClient([w.url for w in workers], backoff_s=0.2, timeout_s=10)
    for worker in workers:
        worker.answers = [500]
    sample(client)  # the first worker's 500 moves the request to the other, whose 500 moves it back...
    assert client.failovers >= 1
    time.sleep(0.3)
    sample(client)  # ...and a probe after the back-off brings each suspect back
    assert sorted(client.alive) == sorted(w.url for w in workers) and not client.suspects


def test_a_lone_failing_worker_is_waited_for_not_abandoned(workers) -> None:
    (worker, _) = workers
    client = RolloutClient(worker.url, backoff_s=0.2, timeout_s=10)
    worker.answers = [500, 502]
    sample(client)
    assert client.alive == [worker.url] and worker.posts == 3


def test_a_timed_out_worker_comes_back_once_its_readiness_answers(workers) -> None:
    slow, fast = workers
    client = RolloutClient([slow.url, fast.url], timeout_s=0.5, backoff_s=0.2)
    slow.delay_s, slow.ready = 1.0, False
    for _ in range(2):
        sample(client)
    assert client.alive == [fast.url] and slow.url in client.suspects
    slow.delay_s = 0.0
    time.sleep(0.3)
    sample(client)  # probed, still not ready: the back-off doubles
    assert slow.url in client.suspects and client.suspects[slow.url].backoff_s == pytest.approx(0.4)
    slow.ready = True
    time.sleep(0.5)
    sample(client)
    assert sorted(client.alive) == sorted([slow.url, fast.url])


def test_a_worker_that_missed_a_weight_push_waits_for_the_next(workers) -> None:
    import torch

    down, up = workers
    client = RolloutClient([down.url, up.url], backoff_s=0.2, timeout_s=10)
    down.answers = [500]
    assert client.update_weights({"w": torch.zeros(1)}) == 1  # `up` took it, `down` failed
    assert client.alive == [up.url]
    time.sleep(0.3)
    sample(client)  # `down` answers /readyz again, but serves old weights: not in service yet
    assert client.alive == [up.url] and client.behind == {down.url}
    client.update_weights({"w": torch.zeros(1)})
    assert sorted(client.alive) == sorted([down.url, up.url]) and not client.behind


@pytest.mark.timeout(1800)  # waits for the session's protocol model and a vLLM start-up
def test_the_real_servers_400_keeps_the_worker(rollout_url: str) -> None:
    client = RolloutClient(rollout_url, token=TOKEN)
    with pytest.raises(RolloutServerError, match="no adapter named 'missing' is loaded"):
        client.samples(MESSAGES, [IMAGE], n=1, sampling=Sampling(max_tokens=2, adapter="missing"))
    assert client.alive == [rollout_url] and not client.suspects
    assert len(client.samples(MESSAGES, [IMAGE], n=1, sampling=Sampling(max_tokens=2)).groups) == 1

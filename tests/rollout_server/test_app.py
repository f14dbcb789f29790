"""The HTTP layer with a stand-in engine (no vLLM): status codes, one-line JSON errors and their counts."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient

from rft.codec import encode_png
from rollout_server.app import create_app
from rollout_server.routes import weights as weights_routes
from rollout_server.sampling import Completion

TOKEN = "secret"
IMAGE = encode_png(np.zeros((8, 8, 3), dtype=np.uint8))


class FakeSampler:
    def __init__(self) -> None:
        self.loaded: list[bytes] = []

    async def sample(self, prompt, images, *, n, settings, adapter=None) -> list[Completion]:
        return [Completion([7, 8], [-0.5, -0.25], "stop") for _ in range(n)]

    async def update_weights(self, payload: bytes) -> int:
        if payload == b"bad":
            raise RuntimeError("not safetensors\nsecond line\nthird\nfourth")
        self.loaded.append(payload)
        return 3

    async def add_adapter(self, name, path) -> None: ...

    def shutdown(self) -> None: ...


class FakeRunner:
    max_tool_calls = 3

    def __init__(self) -> None:
        self.fail_with: Exception | None = None

    async def sample_each(self, messages, images, *, n, settings, adapter=None):
        if self.fail_with is not None:
            raise self.fail_with
        return [([1, 2], [Completion([7], [-0.1], "stop")] * n) for _ in images]

    async def episodes_each(self, images, *, n, settings, adapter=None):
        if self.fail_with is not None:
            raise self.fail_with
        return [[] for _ in images]


def fake_engine() -> SimpleNamespace:
    tokenizer = SimpleNamespace(
        decode=lambda ids: "text", end_of_turn_id=0, processor=None, arch="qwen2_5_vl"
    )
    return SimpleNamespace(sampler=FakeSampler(), runner=FakeRunner(), tokenizer=tokenizer)


@pytest.fixture
def engine() -> SimpleNamespace:
    return fake_engine()


@pytest.fixture
def client(engine: SimpleNamespace):
    app = create_app(lambda: engine, token=TOKEN)
    with TestClient(app, raise_server_exceptions=False) as client:  # `with` runs the start-up
        yield client


def counted(client: TestClient, endpoint: str, status: int) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'rollout_requests_total{{endpoint="{endpoint}",status="{status}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_before_start_up_only_liveness_answers() -> None:
    client = TestClient(create_app(fake_engine, token=TOKEN))  # no `with`: the engine is never built
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/readyz").status_code == 503
    reply = client.post("/v1/episodes", json={"images": [IMAGE], "n": 1})
    assert (reply.status_code, reply.json()) == (503, {"error": "not ready: engine starting"})


def test_ready_worker_reports_version_and_tool_limit(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"ready": True, "weights_version": 0, "max_tool_calls": 3}


def test_samples_answer_with_decoded_completions(client: TestClient) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "images": [IMAGE, IMAGE], "n": 2}
    reply = client.post("/v1/samples", json=body)
    assert reply.status_code == 200, reply.text
    groups = reply.json()["groups"]
    assert len(groups) == 2 and groups[0]["completions"][1]["text"] == "text"
    assert counted(client, "samples", 200) == 1


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"images": ["@@@"], "n": 1}', b'{"images": [], "n": 1}', b'{"images": ["x"], "n": 0}'],
)
def test_malformed_bodies_get_a_counted_one_line_400(client: TestClient, body: bytes) -> None:
    reply = client.post("/v1/episodes", content=body)
    assert reply.status_code == 400
    assert reply.json()["error"] and "\n" not in reply.json()["error"]
    assert counted(client, "episodes", 400) == 1


def test_input_the_engine_rejects_is_a_400(client: TestClient, engine: SimpleNamespace) -> None:
    engine.runner.fail_with = ValueError("the prompt fills the context of 4096 tokens")
    reply = client.post("/v1/episodes", json={"images": [IMAGE], "n": 1})
    assert (reply.status_code, reply.json()) == (
        400,
        {"error": "the prompt fills the context of 4096 tokens"},
    )


def test_an_unexpected_error_is_a_logged_counted_500(
    client: TestClient, engine: SimpleNamespace, caplog: pytest.LogCaptureFixture
) -> None:
    engine.runner.fail_with = KeyError("bug")
    with caplog.at_level(logging.ERROR, logger="rollout_server.app"):
        reply = client.post("/v1/episodes", json={"images": [IMAGE], "n": 1})
    assert (reply.status_code, reply.json()) == (500, {"error": "internal error (KeyError)"})
    assert "POST /v1/episodes failed" in caplog.text and "KeyError" in caplog.text
    assert counted(client, "episodes", 500) == 1
    assert client.get("/healthz").status_code == 200
    assert "rollout_queue_depth 0.0" in client.get("/metrics").text


def test_state_changing_endpoints_need_the_token(client: TestClient) -> None:
    for headers in ({}, {"authorization": "Bearer wrong"}):
        reply = client.post("/v1/weights", content=b"\x00", headers=headers)
        assert reply.status_code == 403 and "token" in reply.json()["error"]
        reply = client.post("/v1/adapters", json={"name": "a", "path": "/tmp"}, headers=headers)
        assert reply.status_code == 403
    assert counted(client, "weights", 403) == 2 and counted(client, "adapters", 403) == 2


def test_a_server_without_token_refuses_weight_updates(engine: SimpleNamespace) -> None:
    with TestClient(create_app(lambda: engine, token=None)) as client:
        reply = client.post("/v1/weights", content=b"\x00", headers={"authorization": "Bearer "})
    assert reply.status_code == 403 and "without --token" in reply.json()["error"]


def test_weight_updates(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert client.post("/v1/weights", content=b"", headers=auth).status_code == 400
    reply = client.post("/v1/weights", content=b"bad", headers=auth)
    assert reply.status_code == 400
    assert reply.json()["error"] == "could not load the weights: not safetensors second line third"
    reply = client.post("/v1/weights", content=b"tensors", headers=auth)
    assert reply.json() == {"loaded": 3, "weights_version": 1}
    monkeypatch.setattr(weights_routes, "MAX_WEIGHTS_BYTES", 4)
    assert client.post("/v1/weights", content=b"tensors", headers=auth).status_code == 413
    assert client.get("/readyz").json()["weights_version"] == 1


def test_adapters_need_a_peft_folder(client: TestClient, tmp_path) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}
    reply = client.post("/v1/adapters", json={"name": "a", "path": str(tmp_path)}, headers=auth)
    assert reply.status_code == 400 and "not a PEFT adapter folder" in reply.json()["error"]
    (tmp_path / "adapter_config.json").write_text("{}")
    reply = client.post("/v1/adapters", json={"name": "a", "path": str(tmp_path)}, headers=auth)
    assert reply.json() == {"adapter": "a", "weights_version": 1}


def test_bad_chat_requests_say_what_is_wrong(client: TestClient) -> None:
    reply = client.post("/v1/chat/completions", json={"messages": "hi"})
    assert (reply.status_code, reply.json()) == (
        400,
        {"error": "bad chat completion request: the body needs a 'messages' list"},
    )

"""The HTTP layer with a stand-in engine (no vLLM): status codes, one-line JSON errors and their counts."""

from __future__ import annotations

import json
import logging
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from metrics_scrape import metric_value
from PIL import ImageFile

from rft.codec import encode_png
from rft.tools import TOOL_NAMES
from rollout_server import api
from rollout_server.api import MAX_TEXT_CHARS
from rollout_server.app import create_app
from rollout_server.episodes import EpisodeRunner
from rollout_server.routes import rollouts as rollouts_routes
from rollout_server.routes import weights as weights_routes
from rollout_server.sampling import Completion

TOKEN = "secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
IMAGE = encode_png(np.zeros((8, 8, 3), dtype=np.uint8))
MESSAGES = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Real or spoof?"}]}]


class FakeSampler:
    def __init__(self) -> None:
        self.loaded: list[bytes] = []
        self.calls = 0
        self.last_served = 0.0

    async def check_serving(self, timeout_s: float) -> None: ...

    async def sample(self, prompt, images, *, n, settings, adapter=None) -> list[Completion]:
        self.calls += 1
        return [Completion([7, 8], [-0.5, -0.25], "stop") for _ in range(n)]

    async def update_weights(self, payload: bytes) -> int:
        if payload == b"bad":
            raise RuntimeError("not safetensors\nsecond line\nthird\nfourth")
        self.loaded.append(payload)
        return 3

    async def add_adapter(self, name, path) -> None: ...

    async def stop_output_handler(self) -> None: ...

    def shutdown(self) -> None: ...


class FakeRunner:
    max_tool_calls = 3

    def __init__(self) -> None:
        self.fail_with: Exception | None = None
        self.calls = 0

    async def sample_each(self, messages, images, *, n, settings, adapter=None):
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return [([1, 2], [Completion([7], [-0.1], "stop")] * n) for _ in images]

    async def episodes_each(self, images, *, n, settings, adapter=None):
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return [[] for _ in images]


def fake_engine() -> SimpleNamespace:
    tokenizer = SimpleNamespace(
        decode=lambda ids: "text", end_of_turn_id=0, processor=None, arch="qwen2_5_vl", tool_names=TOOL_NAMES
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
    text = client.get("/metrics", headers=AUTH).text  # /metrics wants the token on a server that has one
    return metric_value(text, "rollout_requests_total", default=0.0, endpoint=endpoint, status=str(status))


def test_before_start_up_only_liveness_answers() -> None:
    client = TestClient(create_app(fake_engine, token=TOKEN))  # no `with`: the engine is never built
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/readyz").status_code == 503
    reply = client.post("/v1/episodes", json={"images": [IMAGE], "n": 1})
    assert (reply.status_code, reply.json()) == (503, {"error": "not ready: engine starting"})


def test_ready_worker_reports_version_and_tool_limit(client: TestClient) -> None:
    assert client.get("/readyz").json() == {
        "ready": True,
        "weights_version": 0,
        "max_tool_calls": 3,
        "tools": list(TOOL_NAMES),
    }


def test_samples_answer_with_decoded_completions(client: TestClient) -> None:
    body = {"messages": MESSAGES, "images": [IMAGE, IMAGE], "n": 2}
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
    assert "rollout_queue_depth 0.0" in client.get("/metrics", headers=AUTH).text


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
        {"error": "messages: Input should be a valid array (got string)"},
    )


SAMPLES = {"messages": MESSAGES, "images": [IMAGE], "n": 1}
EPISODES = {"images": [IMAGE], "n": 1}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def user_text(text: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


# (route, body, the field its error names): values pydantic coerced, or vLLM refused with a 500, or whose
# kind (a bool seed) stopped vLLM's engine from reading requests (issue #14).
WRONGLY_TYPED = [
    ("/v1/samples", {**SAMPLES, "sampling": {"seed": True}}, "sampling.seed"),
    ("/v1/samples", {**SAMPLES, "sampling": {"seed": 1e30}}, "sampling.seed"),
    ("/v1/samples", {**SAMPLES, "sampling": {"seed": 2**40}}, "sampling.seed"),
    ("/v1/samples", {**SAMPLES, "sampling": {"seed": -1}}, "sampling.seed"),
    ("/v1/samples", {**SAMPLES, "sampling": {"max_tokens": "12"}}, "sampling.max_tokens"),
    ("/v1/samples", {**SAMPLES, "sampling": {"temperature": "nan"}}, "sampling.temperature"),
    ("/v1/samples", {**SAMPLES, "sampling": {"temperature": 5}}, "sampling.temperature"),
    ("/v1/samples", {**SAMPLES, "n": 2.0}, "n"),
    ("/v1/samples", {**SAMPLES, "messages": user_text(7)}, "messages[0].content[1].text"),
    ("/v1/samples", {**SAMPLES, "messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
    ("/v1/episodes", {**EPISODES, "sampling": {"ignore_eos": 1}}, "sampling.ignore_eos"),
    ("/v1/episodes", {**EPISODES, "sampling": {"top_p": "1"}}, "sampling.top_p"),
    ("/v1/episodes", {**EPISODES, "sampling": {"adapter": 3}}, "sampling.adapter"),
    ("/v1/episodes", {**EPISODES, "n": "2"}, "n"),
    ("/v1/chat/completions", {**CHAT, "seed": True}, "seed"),
    ("/v1/chat/completions", {**CHAT, "seed": 10**30}, "seed"),
    ("/v1/chat/completions", {**CHAT, "max_tokens": "12"}, "max_tokens"),
    ("/v1/chat/completions", {**CHAT, "temperature": "nan"}, "temperature"),
    ("/v1/chat/completions", {**CHAT, "top_p": 2}, "top_p"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
]


@pytest.mark.parametrize(("route", "body", "field"), WRONGLY_TYPED)
def test_a_wrongly_typed_field_is_a_400_naming_it_before_the_engine(
    client: TestClient, engine: SimpleNamespace, route: str, body: dict, field: str
) -> None:
    reply = client.post(route, json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"].startswith(f"{field}: "), reply.json()
    assert "\n" not in reply.json()["error"]
    assert engine.runner.calls == engine.sampler.calls == 0


LIMITED = [
    (
        "/v1/samples",
        {**SAMPLES, "messages": user_text("x" * (MAX_TEXT_CHARS + 1))},
        "messages[0].content[1].text: String should have at most 65536 characters",
    ),
    (
        "/v1/samples",
        {**SAMPLES, "messages": [{"role": "system", "content": "x" * 60_000}] * 3 + MESSAGES},
        "messages: the texts hold 180014 characters; the limit is 131072 per request",
    ),
    (
        "/v1/samples",
        {**SAMPLES, "messages": [{"role": "user", "content": "no image"}]},
        "messages: the messages hold 0 image parts; one is filled with each of `images`",
    ),
    ("/v1/samples", {**SAMPLES, "messages": MESSAGES * 65}, "messages: List should have at most 64 items"),
    ("/v1/episodes", {**EPISODES, "images": [IMAGE] * 1025}, "images: List should have at most 1024 items"),
    ("/v1/episodes", {**EPISODES, "images": [IMAGE] * 40, "n": 256}, "n: n x images is 10240; the limit"),
    (
        "/v1/chat/completions",
        {**CHAT, "messages": [{"role": "user", "content": "face " * 2_000_000}]},
        "messages[0].content: String should have at most 65536 characters",
    ),
    (
        "/v1/chat/completions",
        {**CHAT, "tools": [{"type": "function", "description": "x" * 140_000}]},
        "tools: the texts hold 140043 characters; the limit is 131072 per request",
    ),
    (
        "/v1/chat/completions",
        {**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}] * 9}]},
        "messages: the messages hold 9 images; the limit is 8",
    ),
]


@pytest.mark.parametrize(("route", "body", "error"), LIMITED)
def test_requests_over_the_limits_are_refused_before_the_engine(
    client: TestClient, engine: SimpleNamespace, route: str, body: dict, error: str
) -> None:
    reply = client.post(route, json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"].startswith(error), reply.json()
    assert engine.runner.calls == engine.sampler.calls == 0


def test_a_body_over_its_routes_limit_is_a_413(
    client: TestClient, engine: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollouts_routes, "MAX_ROLLOUT_BODY_BYTES", 100)
    body = json.dumps(SAMPLES).encode()
    assert client.post("/v1/samples", content=body).status_code == 413  # from its Content-Length
    chunked = client.post("/v1/samples", content=iter([body[:60], body[60:]]))  # while it streams in
    assert (chunked.status_code, chunked.json()) == (
        413,
        {"error": "the request body is larger than 100 bytes"},
    )
    auth = {"authorization": f"Bearer {TOKEN}"}
    big = json.dumps({"name": "a", "path": "x" * 2**20}).encode()  # the default limit of a JSON body, 1 MiB
    assert client.post("/v1/adapters", content=big, headers=auth).status_code == 413
    assert engine.runner.calls == 0
    assert counted(client, "samples", 413) == 2 and counted(client, "adapters", 413) == 1


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def load(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the server decoded the pixels of a request it should have refused")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(
    client: TestClient, engine: SimpleNamespace, huge_png: str, no_decoding
) -> None:
    reply = client.post("/v1/samples", json={**SAMPLES, "images": [IMAGE, huge_png]})
    assert (reply.status_code, reply.json()["error"]) == (
        400,
        "images[1]: the image is 9500x9500 pixels; the limit is 16777216 pixels",
    )
    url = {"url": "data:image/png;base64," + huge_png}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": url}]}
    ]
    reply = client.post("/v1/chat/completions", json={**CHAT, "messages": messages})
    assert (reply.status_code, reply.json()["error"]) == (
        400,
        "messages[0].content[1].image_url: the image is 9500x9500 pixels; the limit is 16777216 pixels",
    )
    assert engine.runner.calls == engine.sampler.calls == 0


def test_images_over_the_requests_pixel_budget_are_refused_before_decoding(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, no_decoding
) -> None:
    monkeypatch.setattr(api, "MAX_REQUEST_PIXELS", 100)
    reply = client.post("/v1/episodes", json={**EPISODES, "images": [IMAGE, IMAGE]})
    assert (reply.status_code, reply.json()["error"]) == (
        400,
        "the images hold 128 pixels; the limit is 100 per request",
    )


class BlockingTokenizer:
    """A tokenizer whose prompt_ids blocks until released (at most 10 s), as a long prompt would."""

    end_of_turn_id = 0

    def __init__(self) -> None:
        self.placeholder_ids = [9]
        self.started, self.released = threading.Event(), threading.Event()

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        self.started.set()
        self.released.wait(timeout=10)
        return [1, 9, 2]

    def expand_images(self, ids: list[int], images: list) -> SimpleNamespace:
        return SimpleNamespace(input_ids=[9] * 5)

    def decode(self, ids: list[int]) -> str:
        return "text"


def test_healthz_answers_while_a_prompt_is_tokenised() -> None:
    tokenizer = BlockingTokenizer()
    runner = EpisodeRunner(FakeSampler(), tokenizer, tools=None, max_model_len=64)
    engine = SimpleNamespace(sampler=FakeSampler(), runner=runner, tokenizer=tokenizer)
    replies = []
    with TestClient(create_app(lambda: engine, token=TOKEN)) as client:
        sampling = threading.Thread(target=lambda: replies.append(client.post("/v1/samples", json=SAMPLES)))
        sampling.start()
        assert tokenizer.started.wait(timeout=30)
        start = time.monotonic()
        assert client.get("/healthz").status_code == 200
        answered_after = time.monotonic() - start
        tokenizer.released.set()
        sampling.join(timeout=30)
    assert answered_after < 5, f"/healthz waited {answered_after:.1f} s for the tokenizer"
    assert replies[0].status_code == 200, replies[0].text

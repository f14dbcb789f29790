"""The reward service for real: Ray Serve replicas, HTTP, retries, idempotency and a replica killed mid-batch."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import numpy as np
import pytest
import ray
import requests
from metrics_scrape import metric_value, scrape

from reward_service.api import ToolRequest, encode_image
from reward_service.client import InProcessRewards, RewardClient, RewardServiceError

TOOL_CALL = '<think>check the spectrum</think><tool_call>{"name": "FFTTool", "arguments": {}}</tool_call>'
ZOOM_CALL = '<think>zoom</think><tool_call>{"name": "ZoomInTool", "arguments": {"bbox": [10, 10, 90, 90]}}</tool_call>'


def episode(i: int) -> dict:
    """Multi-turn DT-GRPO episodes of varied shapes: correct/incorrect, with and without tools."""
    label = "spoof" if i % 2 else "live"
    answer = ["<Spoof>", "<Real>"][i % 3 == 0]
    turns = [f"{answer}<reason>first look {i}</reason>"]
    turns += [TOOL_CALL, ZOOM_CALL][: i % 3]
    turns.append(f"<think>done {i}</think><answer>{answer}</answer>")
    return {"id": f"r{i}", "label": label, "turns": turns}


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of a metric's series with `labels` (0 before any is counted)."""
    return metric_value(scrape(url), name, default=0.0, **labels)


def image() -> np.ndarray:
    return (np.random.default_rng(0).random((224, 224, 3)) * 255).astype(np.uint8)


def test_health_ready_and_metrics(service_url):
    assert requests.get(service_url + "/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(service_url + "/readyz", timeout=30).json() == {"status": "ready", "replicas": 2}
    assert "reward_service_requests" in requests.get(service_url + "/metrics", timeout=10).text


@pytest.mark.parametrize(("name", "arguments"), [("FFTTool", {}), ("ZoomInTool", {"bbox": [10, 20, 90, 60]})])
def test_tool_pictures_are_the_same_in_every_encoding_and_mode(service_url, name, arguments):
    pictures = [
        client.run_tool(name, image(), arguments).image
        for encoding in ("raw", "png")
        for client in (RewardClient(service_url, image_encoding=encoding), InProcessRewards(encoding))
    ]
    assert pictures[0] is not None and pictures[0].dtype == np.uint8 and pictures[0].shape == (224, 224, 3)
    assert all(np.array_equal(picture, pictures[0]) for picture in pictures[1:])


def test_raw_request_is_answered_raw_and_png_request_png(service_url):
    for encoding, field, other in (("raw", "image_raw", "image_png"), ("png", "image_png", "image_raw")):
        body = ToolRequest(name="FFTTool", **encode_image(image(), encoding)).model_dump_json()
        answer = requests.post(service_url + "/v1/tools", data=body, timeout=30).json()
        assert answer["ok"] and answer[field] and answer[other] is None


def raw_body(**changes: object) -> dict:
    body = json.loads(ToolRequest(name="FFTTool", **encode_image(image()[:32, :48], "raw")).model_dump_json())
    body["image_raw"].update(changes)
    return body


GOOD_DATA = raw_body()["image_raw"]["data"]


@pytest.mark.parametrize(
    ("changes", "error_type"),
    [
        ({"data": GOOD_DATA[:-4]}, "raw_image_size"),  # a pixel short
        ({"data": GOOD_DATA + "AAAA"}, "raw_image_size"),  # a pixel too many
        ({"shape": [48, 32, 3]}, None),  # transposed: the same byte count, a valid image
        ({"shape": [32, 48, 4]}, "raw_image_shape"),  # RGBA
        ({"shape": [32, 48]}, "missing"),  # no channel axis
        ({"shape": [32, 48, 3, 1]}, "too_long"),
        ({"shape": [4, 384, 3]}, "raw_image_shape"),  # a side under the tools' minimum
        ({"shape": [32.0, 48, 3]}, "int_type"),
        ({"shape": ["32", 48, 3]}, "int_type"),
        ({"shape": [100_000, 100_000, 3]}, "raw_image_shape"),
        ({"shape": [4096, 4096, 3]}, "raw_image_too_large"),
        ({"dtype": "float32"}, "literal_error"),
        ({"dtype": "uint16"}, "literal_error"),
        ({"data": "*" * len(GOOD_DATA)}, "raw_image_base64"),
        ({"data": 12}, "string_type"),
    ],
)
def test_bad_raw_images_are_typed_422s(service_url, changes, error_type):
    reply = requests.post(service_url + "/v1/tools", json=raw_body(**changes), timeout=30)
    if error_type is None:  # a well-formed image of another shape is a valid request
        assert reply.status_code == 200 and reply.json()["ok"]
        return
    assert reply.status_code == 422, reply.text[:300]
    assert error_type in [error["type"] for error in reply.json()["detail"]]


@pytest.mark.parametrize("images", [{}, {"image_png": "AAAA", "image_raw": raw_body()["image_raw"]}])
def test_a_tool_call_needs_exactly_one_image(service_url, images):
    reply = requests.post(service_url + "/v1/tools", json={"name": "FFTTool", **images}, timeout=30)
    assert reply.status_code == 422 and reply.json()["detail"][0]["type"] == "one_image"


@pytest.mark.parametrize(
    ("name", "arguments", "error_type"),
    [
        ("ZoomInTool", {"bbox": [float("nan"), 0, 10, 10]}, "ToolArgumentError"),
        ("ZoomInTool", {"bbox": [1e300, -5, 3, 3]}, "ToolArgumentError"),
        ("MagicTool", {}, "UnknownToolError"),
        ("LBPTool", "not an object", "ToolArgumentError"),
    ],
)
def test_bad_tool_calls_are_typed_rejections(service_url, name, arguments, error_type):
    result = RewardClient(service_url).run_tool(name, image(), arguments)
    assert not result.ok and result.image is None
    assert result.error_type == error_type and name in result.error


def test_corrupt_image_is_a_rejection_not_a_crash(service_url):
    body = {"name": "FFTTool", "arguments": {}, "image_png": "bm90IGFuIGltYWdl"}
    reply = requests.post(service_url + "/v1/tools", json=body, timeout=30)
    assert reply.status_code == 200 and reply.json()["error_type"] == "ImageDecodeError"


def test_scores_64_episodes_like_in_process(service_url):
    rollouts = [episode(i) for i in range(64)]
    remote = RewardClient(service_url).score("dt_grpo", rollouts)
    assert remote == InProcessRewards().score("dt_grpo", rollouts)
    assert [s.id for s in remote] == [r["id"] for r in rollouts]


def wait_for_metric(
    url: str, name: str, labels: dict[str, str], target: float, timeout_s: float = 10
) -> float:
    """The metric once it reaches `target` (replicas flush every 0.2 s), plus a moment for stragglers."""
    deadline = time.monotonic() + timeout_s
    while metric(url, name, **labels) < target and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # anything counted twice would arrive by now
    return metric(url, name, **labels)


def test_a_batch_is_split_over_the_replicas_and_each_score_comes_back_once(service_url):
    client = RewardClient(service_url, spread_over_replicas=True)
    assert client.replica_count() == 2
    rollouts = [episode(i) for i in range(64)]
    time.sleep(0.5)  # earlier tests' counts reach the hub (replicas flush every 0.2 s)
    labels = {"endpoint": "score", "status": "ok"}
    scored = metric(service_url, "reward_service_rollouts_scored_total")
    requests_ok = metric(service_url, "reward_service_requests_total", **labels)
    result = client.score("dt_grpo", rollouts)
    assert result == InProcessRewards().score("dt_grpo", rollouts)
    assert [s.id for s in result] == [r["id"] for r in rollouts]
    # Two chunks of 32, each scored once: not one request, and no rollout scored twice.
    assert (
        wait_for_metric(service_url, "reward_service_requests_total", labels, requests_ok + 2)
        == requests_ok + 2
    )
    assert (
        wait_for_metric(service_url, "reward_service_rollouts_scored_total", {}, scored + 64) == scored + 64
    )


def test_one_request_id_cut_into_other_chunks_gives_the_same_scores(service_url):
    # A chunk's id names its rollout range, so a batch re-sent after the replica count changed is cut
    # differently without its chunks colliding with the first ones (which would be a 409).
    rollouts = [episode(i) for i in range(20)]
    request_id = uuid.uuid4().hex
    cuts = [{"spread_over_replicas": True}, {}, {"chunk_size": 3}]
    results = [
        RewardClient(service_url, **cut).score("dt_grpo", rollouts, request_id=request_id) for cut in cuts
    ]
    assert results[0] == results[1] == results[2] == InProcessRewards().score("dt_grpo", rollouts)


def test_same_request_id_gives_the_same_scores(service_url):
    client = RewardClient(service_url)
    rollouts = [episode(i) for i in range(10)]
    request_id = uuid.uuid4().hex
    assert client.score("dt_grpo", rollouts, request_id=request_id) == client.score(
        "dt_grpo", rollouts, request_id=request_id
    )


def test_reused_request_id_never_returns_another_batchs_scores(service_url):
    client = RewardClient(service_url)
    request_id = uuid.uuid4().hex
    client.score("dt_grpo", [episode(1)], request_id=request_id)
    try:
        second = client.score("dt_grpo", [episode(2)], request_id=request_id)
    except RewardServiceError as error:  # the same replica remembered the id
        assert "409" in str(error)
    else:  # another replica scored it afresh
        assert second == InProcessRewards().score("dt_grpo", [episode(2)])


def test_invalid_requests_are_refused_with_a_reason(service_url):
    client = RewardClient(service_url)
    with pytest.raises(RewardServiceError, match=r"422.*beta_fats does not apply to method dt_grpo"):
        client.score("dt_grpo", [episode(1)], coefficients={"beta_fats": 1.0})
    reply = requests.post(service_url + "/v1/score", data=b"{not json", timeout=10)
    assert reply.status_code == 422
    twice = {"request_id": "dup", "method": "dt_grpo", "rollouts": [episode(1), episode(1)]}
    reply = requests.post(service_url + "/v1/score", json=twice, timeout=10)
    assert reply.status_code == 422 and "unique" in reply.text
    assert client.health()


@pytest.mark.parametrize(
    ("path", "changes", "field"),
    [
        ("/v1/score", {"max_tool_calls": "3"}, "max_tool_calls"),
        ("/v1/score", {"rollouts": [{**episode(1), "label": 1}]}, "rollouts.0.label"),
        ("/v1/score", {"coefficients": {"beta_fast": True}}, "coefficients.beta_fast"),
        ("/v1/tools", {"output_size": 224.0}, "output_size"),
    ],
)
def test_wrong_types_are_422s_naming_the_field(service_url, path, changes, field):
    body = {"request_id": uuid.uuid4().hex, "method": "dt_grpo", "rollouts": [episode(1)]}
    if path == "/v1/tools":
        body = {"name": "FFTTool", "image_png": "AAAA"}
    reply = requests.post(service_url + path, json={**body, **changes}, timeout=30)
    assert reply.status_code == 422 and reply.json()["error"].startswith(f"{field}:"), reply.text[:300]


def test_a_body_declared_over_the_limit_is_refused_before_it_is_sent(service_url):
    host, port = service_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n"
        )  # and not one byte of the body: the answer comes all the same
        assert sock.recv(4096).startswith(b"HTTP/1.1 413 ")


def test_client_gives_up_clearly_when_nothing_listens():
    with socket_free() as port:
        client = RewardClient(f"http://127.0.0.1:{port}", retries=2, backoff_s=0.01, timeout_s=2)
        with pytest.raises(RewardServiceError, match="failed after 3 attempts"):
            client.score("dt_grpo", [episode(1)])


class socket_free:
    """A loopback port with nothing listening on it."""

    def __enter__(self) -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    def __exit__(self, *_: object) -> None:
        return None


def replica_names() -> list[dict]:
    return [a for a in ray.util.list_named_actors(all_namespaces=True) if "#RewardServer#" in a["name"]]


def test_killing_a_replica_mid_batch_loses_and_duplicates_nothing(service_url):
    rollouts = [episode(i) for i in range(3000)]  # 750 HTTP chunks of 4, spread over the two replicas
    expected = InProcessRewards().score("dt_grpo", rollouts)
    scored_before = metric(service_url, "reward_service_rollouts_scored_total")
    result: dict = {}
    # A request the dead replica had accepted may never be answered by Serve's proxy: the client's timeout
    # turns it into a retry of the same chunk id.
    client = RewardClient(service_url, timeout_s=15, chunk_size=4, backoff_s=0.05)

    def call() -> None:
        result["scores"] = client.score("dt_grpo", rollouts)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 120
    while metric(service_url, "reward_service_rollouts_scored_total") - scored_before < 80:
        assert time.monotonic() < deadline and worker.is_alive(), "the batch never got going"
        time.sleep(0.02)
    victim = replica_names()[0]
    ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=True)
    scored_at_kill = metric(service_url, "reward_service_rollouts_scored_total") - scored_before
    worker.join(timeout=300)
    assert scored_at_kill < len(rollouts) / 2, "the batch had finished before the kill"
    assert victim["name"] not in [a["name"] for a in replica_names()]
    # Every id, once, in order, with the in-process values: chunks that were on the dead replica were
    # re-sent (by Serve's router before a replica accepted them, or by the client after a 5xx).
    assert result["scores"] == expected

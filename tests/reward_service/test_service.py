"""The reward service for real: Ray Serve replicas, HTTP, retries, idempotency and a replica killed mid-batch."""

from __future__ import annotations

import re
import threading
import time
import uuid

import numpy as np
import pytest
import ray
import requests

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


def metric(url: str, name: str) -> float:
    text = requests.get(url + "/metrics", timeout=10).text
    values = [float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)]
    return sum(values)


def image() -> np.ndarray:
    return (np.random.default_rng(0).random((224, 224, 3)) * 255).astype(np.uint8)


def test_health_ready_and_metrics(service_url):
    assert requests.get(service_url + "/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(service_url + "/readyz", timeout=30).json() == {"status": "ready"}
    assert "reward_service_requests" in requests.get(service_url + "/metrics", timeout=10).text


def test_tool_over_http_equals_in_process(service_url):
    remote = RewardClient(service_url).run_tool("FFTTool", image(), {})
    local = InProcessRewards().run_tool("FFTTool", image(), {})
    assert remote.ok and local.ok
    assert np.array_equal(remote.image, local.image)


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
    with pytest.raises(RewardServiceError, match=r"422.*unknown coefficient"):
        client.score("dt_grpo", [episode(1)], coefficients={"beta_fats": 1.0})
    reply = requests.post(service_url + "/v1/score", data=b"{not json", timeout=10)
    assert reply.status_code == 422
    twice = {"request_id": "dup", "method": "dt_grpo", "rollouts": [episode(1), episode(1)]}
    reply = requests.post(service_url + "/v1/score", json=twice, timeout=10)
    assert reply.status_code == 422 and "unique" in reply.text
    assert client.health()


def test_client_gives_up_clearly_when_nothing_listens():
    with socket_free() as port:
        client = RewardClient(f"http://127.0.0.1:{port}", retries=2, backoff_s=0.01, timeout_s=2)
        with pytest.raises(RewardServiceError, match="failed after 3 attempts"):
            client.score("dt_grpo", [episode(1)])


class socket_free:
    """A loopback port with nothing listening on it."""

    def __enter__(self) -> int:
        import socket

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

"""The rollout server on vLLM's CPU build with a tiny model that follows paper 003's protocol."""

from __future__ import annotations

import base64
import io
import math
import threading
import time

import numpy as np
import pytest
import requests
import torch
from conftest import TOKEN
from episode_logprobs import episode_logprobs
from metrics_scrape import metric_value, scrape
from protocol_model import ANSWER, CALL, FAST, protocol_image

from rft.codec import encode_png
from rft.models.conversation import ConversationTokenizer
from rft.models.loading import detect_arch, load_policy
from rft.prompts.episodes import first_turn_messages
from rft.rollout.sampling import Sampling
from rft.tools import run_tool
from rollout_server.client import RolloutClient

# The first test also waits for the session's protocol model and a vLLM start-up.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def client(rollout_url: str) -> RolloutClient:
    return RolloutClient(rollout_url, token=TOKEN)


@pytest.fixture(scope="module")
def policy(protocol_model_dir):
    model, processor = load_policy(protocol_model_dir)
    return model, ConversationTokenizer(processor, detect_arch(protocol_model_dir))


# Sampling below temperature 1 checks that the server's logprobs are those of the tempered distribution.
TEMPERATURE = 0.7


@pytest.fixture(scope="module")
def episodes(client: RolloutClient):
    sampling = Sampling(max_tokens=64, temperature=TEMPERATURE)
    groups, _ = client.episodes([protocol_image(1), protocol_image(2)], n=3, sampling=sampling)
    return groups


def test_samples_returns_n_completions_with_sampling_logprobs(client: RolloutClient, policy) -> None:
    _, tokenizer = policy
    reply = client.samples(first_turn_messages(), [protocol_image(3), protocol_image(4)], n=3)
    assert len(reply.groups) == 2
    # The compact prompt comes back for the trainer: the same messages give the same ids for every image.
    assert reply.groups[0].prompt_ids == reply.groups[1].prompt_ids
    prompt = tokenizer.decode(reply.groups[0].prompt_ids)
    assert prompt.count("<|image_pad|>") == 1 and prompt.endswith("<|im_start|>assistant\n")
    for group in reply.groups:
        assert len(group.completions) == 3
        for completion in group.completions:
            assert len(completion.token_ids) == len(completion.logprobs) > 0
            assert all(math.isfinite(lp) and lp <= 0 for lp in completion.logprobs)


def test_episode_turns_tool_call_and_images(episodes) -> None:
    answered = [e for group in episodes for e in group if e.stop_reason == "answer"]
    assert len(answered) >= 4, [e.stop_reason for group in episodes for e in group]
    # Sampling may stray from the memorised text, but mostly it reproduces it turn for turn.
    assert sum(e.turns == [FAST, CALL, ANSWER] for e in answered) >= 3
    for group, image in zip(episodes, [protocol_image(1), protocol_image(2)], strict=True):
        for episode in group:
            if episode.stop_reason != "answer":
                continue
            assert len(episode.turns) == 3
            assert [(c.name, c.ok) for c in episode.tool_calls] == [("FFTTool", True)]
            # The tool ran for real on this episode's own image, and its picture is the second image.
            assert len(episode.images) == 2
            np.testing.assert_array_equal(np.asarray(episode.images[1]), run_tool("FFTTool", image, {}))


def test_episode_mask_covers_exactly_the_model_tokens(episodes, policy) -> None:
    _, tokenizer = policy
    for episode in (e for group in episodes for e in group):
        ids, mask = episode.token_ids, episode.mask
        assert len(ids) == len(mask) == len(episode.logprobs)
        assert not any(mask[: episode.prompt_length])
        generated = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
        scripted = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
        for turn in episode.turns:
            assert turn in generated
        assert "re-examine the image" in scripted and "re-examine" not in generated
        if episode.tool_calls:
            assert "<tool_response>" in scripted and "<tool_response>" not in generated
        assert all(lp == 0.0 for lp, m in zip(episode.logprobs, mask, strict=True) if not m)
        placeholders = tokenizer.decode(ids).count("<|image_pad|>")
        assert placeholders == len(episode.images)


def test_trainer_recomputes_the_servers_logprobs(episodes, policy) -> None:
    model, tokenizer = policy
    differences = []
    with torch.no_grad():
        for episode in (e for group in episodes for e in group):
            trainer = episode_logprobs(model, tokenizer, episode.token_ids, episode.images, TEMPERATURE)
            mask = torch.tensor(episode.mask, dtype=torch.bool)
            server = torch.tensor(episode.logprobs)
            differences.append((trainer[mask] - server[mask]).abs())
    mean_difference = torch.cat(differences).mean().item()
    assert mean_difference < 0.02, mean_difference


def test_readiness_reports_the_tool_call_limit_the_trainer_checks(
    client: RolloutClient, rollout_url: str
) -> None:
    from rft.errors import RunSetupError
    from rft.jobs.connect import check_tool_limit

    ready = client.wait_ready(timeout_s=60)
    assert ready[rollout_url]["max_tool_calls"] == 3  # the server's default, paper 003's limit
    check_tool_limit(ready, 3)
    with pytest.raises(RunSetupError, match=r"runs --max-tool-calls 3 but grpo\.max_tool_calls is 1"):
        check_tool_limit(ready, 1)


def test_state_changing_endpoints_refuse_requests_without_the_token(rollout_url: str) -> None:
    for headers in ({}, {"authorization": "Bearer wrong"}):
        reply = requests.post(rollout_url + "/v1/weights", data=b"\x00", headers=headers, timeout=30)
        assert reply.status_code == 403
        assert "token" in reply.json()["error"]
        reply = requests.post(
            rollout_url + "/v1/adapters", json={"name": "a", "path": "/tmp"}, headers=headers, timeout=30
        )
        assert reply.status_code == 403


def test_weight_update_reaches_the_next_rollouts(client: RolloutClient, policy, protocol_model_dir) -> None:
    model, tokenizer = policy
    original = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    updated = {
        name: tensor + 0.05 * torch.randn(tensor.shape, generator=generator)
        if tensor.is_floating_point()
        else tensor
        for name, tensor in original.items()
    }
    image = protocol_image(5)
    # The image is seen once before the update: its cached embedding must not survive the update.
    client.samples(first_turn_messages(), [image], n=1, sampling=Sampling(max_tokens=4))
    try:
        version = client.update_weights(updated)
        assert version >= 1
        (group,) = client.samples(
            first_turn_messages(), [image], n=2, sampling=Sampling(max_tokens=16)
        ).groups
        model.load_state_dict(updated)
        with torch.no_grad():
            for completion in group.completions:
                ids = group.prompt_ids + completion.token_ids
                new = episode_logprobs(model, tokenizer, ids, [image])[len(group.prompt_ids) :]
                assert (new - torch.tensor(completion.logprobs)).abs().mean().item() < 0.02
        model.load_state_dict(original)
        with torch.no_grad():
            old = episode_logprobs(model, tokenizer, ids, [image])[len(group.prompt_ids) :]
        assert (old - torch.tensor(completion.logprobs)).abs().mean().item() > 0.05  # the update was real
    finally:
        model.load_state_dict(original)
        client.update_weights(original)


def test_openai_compatible_chat_completion(rollout_url: str) -> None:
    buffer = io.BytesIO()
    protocol_image(6).save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    body = {
        "model": "teacher",
        "messages": [
            {"role": "system", "content": "You are a face forensics expert."},
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "Hi"}],
            },
        ],
        "max_tokens": 8,
    }
    reply = requests.post(rollout_url + "/v1/chat/completions", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    choice = reply.json()["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert reply.json()["usage"]["completion_tokens"] >= 1


def test_a_chat_prompt_longer_than_the_context_is_a_400(rollout_url: str) -> None:
    body = {"messages": [{"role": "user", "content": "face " * 5000}], "max_tokens": 4}
    reply = requests.post(rollout_url + "/v1/chat/completions", json=body, timeout=120)
    assert reply.status_code == 400, reply.text
    assert "\n" not in reply.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"images": ["@@@"], "n": 1}',
        b'{"images": [], "n": 1}',
        b'{"images": ["aGk="], "n": 0}',
        b'{"images": ["aGk="], "n": 1, "surprise": true}',
    ],
)
def test_bad_requests_get_a_one_line_400(rollout_url: str, body: bytes) -> None:
    reply = requests.post(rollout_url + "/v1/episodes", data=body, timeout=30)
    assert reply.status_code == 400
    assert "\n" not in reply.json()["error"]
    assert requests.get(rollout_url + "/healthz", timeout=10).status_code == 200


def test_metrics_count_tokens_turns_and_tool_latency(rollout_url: str, episodes) -> None:
    text = scrape(rollout_url, token=TOKEN)  # /metrics wants the token on a server that has one
    assert metric_value(text, "rollout_generated_tokens_total") > 0
    assert metric_value(text, "rollout_episode_turns_count") >= 6
    assert metric_value(text, "rollout_tool_call_seconds_count") >= 1
    assert metric_value(text, "rollout_queue_depth") >= 0  # present


def test_seeded_episodes_are_reproducible(client: RolloutClient) -> None:
    """A seeded request samples the same episodes again (what makes a resumed GRPO run repeat its rollouts),
    and different episodes of one request still differ (the server offsets the seed per image, episode and
    turn). tests/models/test_vllm_engine.py checks the engine setting that lets seeded requests run at all."""
    images = [protocol_image(40 + i) for i in range(8)]
    sampling = Sampling(max_tokens=48, temperature=1.0, seed=1234)
    first, _ = client.episodes(images, n=3, sampling=sampling)
    again, _ = client.episodes(images, n=3, sampling=sampling)
    tokens = [[e.token_ids for e in group] for group in first]
    assert tokens == [[e.token_ids for e in group] for group in again]
    assert any(len({tuple(ids) for ids in group}) > 1 for group in tokens)


def seeded_sample(rollout_url: str) -> list[int]:
    body = {
        "messages": first_turn_messages(),
        "images": [encode_png(protocol_image(8))],
        "n": 1,
        "sampling": {"max_tokens": 12, "temperature": 1.0, "seed": 99},
    }
    reply = requests.post(rollout_url + "/v1/samples", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    return reply.json()["groups"][0]["completions"][0]["token_ids"]


def test_wrongly_typed_fields_are_refused_and_the_engine_keeps_serving(rollout_url: str) -> None:
    """A bool seed on the chat route once stopped vLLM's engine reading requests: every later request hung
    while /readyz said 200 (issue #14). Each sampling route now refuses such values, naming the field."""
    before = seeded_sample(rollout_url)
    image = encode_png(protocol_image(9))
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    wrong = [
        ("/v1/chat/completions", {**chat, "seed": True}, "seed"),
        ("/v1/chat/completions", {**chat, "top_p": 2}, "top_p"),
        (
            "/v1/samples",
            {"messages": first_turn_messages(), "images": [image], "n": 1, "sampling": {"seed": True}},
            "sampling.seed",
        ),
        (
            "/v1/episodes",
            {"images": [image], "n": 1, "sampling": {"max_tokens": "12"}},
            "sampling.max_tokens",
        ),
        ("/v1/episodes", {"images": [image], "n": 1, "sampling": {"seed": 10**30}}, "sampling.seed"),
    ]
    for route, body, field in wrong:
        reply = requests.post(rollout_url + route, json=body, timeout=60)
        assert reply.status_code == 400, (route, reply.text)
        assert reply.json()["error"].startswith(f"{field}: "), reply.json()
    assert seeded_sample(rollout_url) == before


def test_an_unknown_adapter_is_a_400_naming_it(rollout_url: str) -> None:
    image = encode_png(protocol_image(10))
    sampling = {"max_tokens": 4, "adapter": "never-loaded"}
    bodies = {
        "/v1/samples": {"messages": first_turn_messages(), "images": [image], "n": 1, "sampling": sampling},
        "/v1/episodes": {"images": [image], "n": 1, "sampling": sampling},
    }
    for route, body in bodies.items():
        reply = requests.post(rollout_url + route, json=body, timeout=60)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"].startswith("sampling.adapter: no adapter named 'never-loaded' is loaded")


def test_a_huge_prompt_is_refused_while_healthz_answers(rollout_url: str) -> None:
    """10 MB of prompt text once held the event loop for 14 s while it was tokenised."""
    body = {"messages": [{"role": "user", "content": "face " * 2_000_000}], "max_tokens": 4}
    replies: list[requests.Response] = []
    url = rollout_url + "/v1/chat/completions"
    sending = threading.Thread(target=lambda: replies.append(requests.post(url, json=body, timeout=300)))
    sending.start()
    slowest = 0.0
    while sending.is_alive():
        start = time.monotonic()
        assert requests.get(rollout_url + "/healthz", timeout=300).status_code == 200
        slowest = max(slowest, time.monotonic() - start)
        time.sleep(0.05)
    sending.join()
    assert slowest < 2, f"/healthz took {slowest:.1f} s"
    assert replies[0].status_code == 400, replies[0].text
    assert replies[0].json()["error"].startswith("messages[0].content: String should have at most 65536")


def test_a_decompression_bomb_is_refused_from_its_header(rollout_url: str, huge_png: str) -> None:
    start = time.monotonic()
    reply = requests.post(rollout_url + "/v1/episodes", json={"images": [huge_png], "n": 1}, timeout=300)
    assert (reply.status_code, reply.json()) == (
        400,
        {"error": "images[0]: the image is 9500x9500 pixels; the limit is 16777216 pixels"},
    )
    assert time.monotonic() - start < 5  # decoding its 270 MB took longer

"""Fuzz the reward service from its own OpenAPI schema (tests/fuzz/harness.py) with the token: no 5xx, no
hang, and a fixed scoring request and tool call answered the same after the fuzzing as before."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
import requests
from harness import bearer, fuzz_service, load_schema
from PIL import Image

from rft.codec import encode_png

pytestmark = pytest.mark.timeout(900)

BUDGET = {"default": 5, "POST /v1/score": 100, "POST /v1/tools": 100, "POST /v1/echo": 40}
TIMEOUT_S = 60
PNG = encode_png(Image.fromarray((np.arange(64 * 64 * 3) % 253).astype(np.uint8).reshape(64, 64, 3)))
EPISODE = {"id": "r0", "label": "spoof", "turns": ["<Real><reason>ok</reason>", "<answer><Spoof></answer>"]}


def fixed_answers(url: str, token: str) -> tuple[dict, dict]:
    """A scoring request (under a fresh request id) and an FFT tool call, as the service answers them."""
    score = {"request_id": uuid.uuid4().hex, "method": "dt_grpo", "rollouts": [EPISODE]}
    scored = requests.post(url + "/v1/score", json=score, headers=bearer(token), timeout=TIMEOUT_S)
    tool = {"name": "FFTTool", "arguments": {}, "image_png": PNG}
    tooled = requests.post(url + "/v1/tools", json=tool, headers=bearer(token), timeout=TIMEOUT_S)
    assert scored.status_code == tooled.status_code == 200, (scored.text[:300], tooled.text[:300])
    tool_answer = {k: v for k, v in tooled.json().items() if k != "seconds"}
    return scored.json()["scores"], tool_answer


def test_fuzzing_the_reward_service_finds_no_5xx_no_hang_and_changes_no_answer(reward_service):
    url, token = reward_service.url, reward_service.token
    assert requests.get(url + "/openapi.json", timeout=30).status_code == 401
    before = fixed_answers(url, token)
    start = time.perf_counter()
    report = fuzz_service(load_schema(url, token), url, token, budget=BUDGET, timeout_s=TIMEOUT_S)
    print(f"\nreward_service fuzzing: {time.perf_counter() - start:.1f} s\n{report.table()}")
    assert report.failures == []
    assert requests.get(url + "/readyz", timeout=30).status_code == 200
    assert fixed_answers(url, token) == before
    assert report.requests_per_route()["POST /v1/score"] >= 200
    # The schema's bodies let generated requests through to the work, not only to the validator.
    assert all(report.statuses[f"POST /v1/{route}"][200] > 0 for route in ("score", "tools", "echo"))


def test_a_decompression_bomb_is_refused_from_its_header(reward_service, huge_png):
    """A 9500x9500 PNG of 270 kB (270 MB of pixels) is an answer naming the limit, not a decoded image; an
    undecodable image is `ok: false` for a tool call (docs/REWARD_SERVICE.md)."""
    url, token = reward_service.url, reward_service.token
    tool = {"name": "FFTTool", "arguments": {}, "image_png": huge_png}
    reply = requests.post(url + "/v1/tools", json=tool, headers=bearer(token), timeout=TIMEOUT_S)
    assert reply.status_code == 200 and reply.json()["ok"] is False
    assert reply.json()["error"] == "the image is 9500x9500 pixels; the limit is 16777216 pixels"

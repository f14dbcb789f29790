"""Arbitrary JSON thrown at the live service: every answer is a clean 200/409/422, never a crash, and the
service stays up."""

from __future__ import annotations

import json

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reward_service.api import ToolResponse

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
TURN_TEXT = st.text(max_size=200) | st.sampled_from(
    [
        "<think>x</think><tool_call>" + "[" * 5000 + "</tool_call>",
        '<think>x</think><tool_call>{"name": "ZoomInTool", "arguments": {"bbox": [NaN, 0, 1, 1]}}</tool_call>',
        "<Spoof><reason>" + "a" * 1_000_000 + "</reason>",
        "\udcff\ud800<answer><Real></answer>",
    ]
)
ROLLOUT = st.fixed_dictionaries(
    {
        "id": st.text(min_size=1, max_size=8),
        "label": st.sampled_from(["live", "spoof", "fake"]),
        "turns": st.lists(TURN_TEXT, max_size=4),
    }
)
SCORE_BODY = st.fixed_dictionaries(
    {
        "request_id": st.text(max_size=20),
        "method": st.sampled_from(["dt_grpo", "st_grpo", "rft_fas", "other"]),
        "rollouts": st.lists(ROLLOUT, max_size=3),
    },
    optional={"coefficients": JSON_VALUES, "max_tool_calls": JSON_VALUES},
)
TOOL_BODY = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["ZoomInTool", "FFTTool", "HOGTool", "Nope"]) | st.text(max_size=10),
        "arguments": JSON_VALUES,
        "image_png": st.sampled_from(["", "AAAA", "iVBORw0KGgo="]) | st.text(max_size=20),
    }
)
RAW_IMAGE = st.fixed_dictionaries(
    {
        "data": st.sampled_from(["", "AAAA", "A" * 256]) | st.text(max_size=300),
        "shape": st.lists(st.integers(-3, 20) | st.floats() | st.text(max_size=3), max_size=4),
    },
    optional={"dtype": st.sampled_from(["uint8", "float32", "int64"]) | JSON_VALUES},
)
RAW_TOOL_BODY = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["ZoomInTool", "FFTTool", "HOGTool", "Nope"]),
        "arguments": JSON_VALUES,
        "image_raw": RAW_IMAGE | JSON_VALUES,
    },
    optional={"image_png": st.sampled_from(["", "AAAA"])},
)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def post(url: str, path: str, body: object) -> requests.Response:
    data = json.dumps(body, allow_nan=True, ensure_ascii=True).encode()
    return requests.post(url + path, data=data, headers={"Content-Type": "application/json"}, timeout=60)


@FUZZ
@given(body=SCORE_BODY)
def test_arbitrary_score_requests_get_clean_answers(service_url, body):
    reply = post(service_url, "/v1/score", body)
    assert reply.status_code in {200, 409, 422}, reply.text[:300]


@FUZZ
@given(body=TOOL_BODY)
def test_arbitrary_tool_requests_get_clean_answers(service_url, body):
    reply = post(service_url, "/v1/tools", body)
    assert reply.status_code in {200, 422}, reply.text[:300]
    if reply.status_code == 200:
        assert reply.json()["ok"] is False  # none of these bodies carries a decodable image


@FUZZ
@given(body=RAW_TOOL_BODY)
def test_arbitrary_raw_images_get_clean_answers(service_url, body):
    reply = post(service_url, "/v1/tools", body)
    assert reply.status_code in {200, 422}, reply.text[:300]
    if reply.status_code == 200:  # the rare well-formed image (8x8 and up): any answer must parse
        ToolResponse.model_validate_json(reply.content)
    else:
        assert all(isinstance(error["type"], str) for error in reply.json()["detail"])


def test_service_is_still_up_after_fuzzing(service_url):
    assert requests.get(service_url + "/healthz", timeout=10).status_code == 200

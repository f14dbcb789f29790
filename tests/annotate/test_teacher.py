"""The OpenAI-compatible client: request shape, reply parsing, retries, failures, fatal errors, in-flight
bound and rate limit (no wall-clock assertions: the limiter's sleeps are recorded, not timed)."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import httpx
import numpy as np
import pytest
from PIL import Image

from rft.annotate import teacher as teacher_module
from rft.annotate.teacher import (
    HttpTeacher,
    RateLimiter,
    TeacherFailure,
    TeacherFatal,
    TeacherRequest,
    TeacherSettings,
    image_part,
    png_data_url,
    reply_text,
    text_part,
)
from rft.annotate.verify import Reason


def settings(**overrides) -> TeacherSettings:
    values = {
        "base_url": "http://teacher.test/v1",
        "model": "m",
        "requests_per_minute": None,
        "api_key_env": None,
    }
    return TeacherSettings(**{**values, **overrides})


def completion(content, **message) -> dict:
    return {
        "choices": [{"message": {"role": "assistant", "content": content, **message}}],
        "usage": {"total_tokens": 9},
    }


def request() -> TeacherRequest:
    image = np.zeros((8, 8, 3), np.uint8)
    return TeacherRequest(
        task="knowledge_transfer",
        messages=[{"role": "user", "content": [image_part(png_data_url(image)), text_part("Is this real?")]}],
    )


def run(coroutine):
    return asyncio.run(coroutine)


async def _complete(transport, **overrides):
    client = HttpTeacher(settings(**overrides), transport=transport)
    try:
        return await client.complete(request()), client
    finally:
        await client.aclose()


def test_request_is_a_standard_chat_completion_with_png_data_urls(monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", "sk-test")
    seen = {}

    def handler(http_request: httpx.Request) -> httpx.Response:
        seen["url"] = str(http_request.url)
        seen["auth"] = http_request.headers.get("authorization")
        seen["body"] = json.loads(http_request.content)
        return httpx.Response(200, json=completion("<Real><reason>ok</reason>"))

    reply, _ = run(_complete(httpx.MockTransport(handler), api_key_env="TEACHER_KEY", temperature=0.3))
    assert reply.text == "<Real><reason>ok</reason>" and reply.usage == {"total_tokens": 9}
    assert seen["url"] == "http://teacher.test/v1/chat/completions"
    assert seen["auth"] == "Bearer sk-test"
    body = seen["body"]
    assert body["model"] == "m" and body["temperature"] == 0.3 and "tools" not in body
    image, text = body["messages"][0]["content"]
    assert text == {"type": "text", "text": "Is this real?"}
    url = image["image_url"]["url"]
    assert image["type"] == "image_url" and url.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert decoded.format == "PNG" and decoded.size == (8, 8)


def test_base_url_may_be_given_with_the_endpoint_path():
    assert settings(base_url="http://h:1/v1/chat/completions/").base_url == "http://h:1/v1"
    with pytest.raises(ValueError, match="http:// or https://"):
        settings(base_url="h:1/v1")


def test_structured_tool_calls_become_the_hermes_text_of_the_training_format():
    call = {"type": "function", "function": {"name": "FFTTool", "arguments": '{"expectation": "peaks"}'}}
    text, _ = reply_text(completion("The face is flat.", tool_calls=[call]))
    assert text == (
        '<think>The face is flat.</think>\n<tool_call>\n{"name": "FFTTool", "arguments": {"expectation": "peaks"}}\n'
        "</tool_call>"
    )
    parts, _ = reply_text(
        completion([{"type": "text", "text": "<Real>"}, {"type": "text", "text": "<reason>x</reason>"}])
    )
    assert parts == "<Real><reason>x</reason>"


@pytest.mark.parametrize(
    "body", [{}, {"choices": []}, {"choices": [{"message": "hi"}]}, completion(""), [1, 2]]
)
def test_bodies_that_are_not_chat_completions_are_bad_responses(body):
    with pytest.raises(TeacherFailure) as failure:
        reply_text(body)
    assert failure.value.reason == Reason.TEACHER_BAD_RESPONSE


def test_a_transient_error_is_retried_and_then_succeeds(monkeypatch):
    monkeypatch.setattr(teacher_module.asyncio, "sleep", _no_sleep)
    statuses = iter([503, 429, 200])

    def handler(http_request):
        status = next(statuses)
        return httpx.Response(
            status, json=completion("<Real><reason>ok</reason>"), headers={"retry-after": "2"}
        )

    reply, client = run(_complete(httpx.MockTransport(handler), http_retries=2))
    assert reply.text.startswith("<Real>") and client.requests == 3


async def _no_sleep(seconds):
    return None


@pytest.mark.parametrize(
    "respond, reason",
    [
        (lambda r: httpx.Response(500, text="boom"), Reason.TEACHER_HTTP_ERROR),
        (lambda r: httpx.Response(400, text="bad request"), Reason.TEACHER_HTTP_ERROR),
        (lambda r: httpx.Response(200, text="<html>not json</html>"), Reason.TEACHER_BAD_RESPONSE),
        (lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)), Reason.TEACHER_TIMEOUT),
    ],
)
def test_request_failures_carry_their_drop_reason(respond, reason, monkeypatch):
    monkeypatch.setattr(teacher_module.asyncio, "sleep", _no_sleep)
    with pytest.raises(TeacherFailure) as failure:
        run(_complete(httpx.MockTransport(respond), http_retries=1))
    assert failure.value.reason == reason


@pytest.mark.parametrize("status", [401, 403, 404])
def test_configuration_errors_stop_the_run(status):
    with pytest.raises(TeacherFatal, match=f"HTTP {status}.*check the URL, the model name and the API key"):
        run(_complete(httpx.MockTransport(lambda r: httpx.Response(status, text="nope"))))


def test_an_unreachable_teacher_stops_the_run_after_its_retries(monkeypatch):
    monkeypatch.setattr(teacher_module.asyncio, "sleep", _no_sleep)
    calls = []

    def refuse(http_request):
        calls.append(1)
        raise httpx.ConnectError("connection refused", request=http_request)

    with pytest.raises(TeacherFatal, match=r"teacher unreachable at http://teacher\.test/v1"):
        run(_complete(httpx.MockTransport(refuse), http_retries=2))
    assert len(calls) == 3


def test_requests_in_flight_never_exceed_the_bound():
    state = {"open": 0, "peak": 0}

    async def handler(http_request):
        state["open"] += 1
        state["peak"] = max(state["peak"], state["open"])
        await asyncio.sleep(0.01)
        state["open"] -= 1
        return httpx.Response(200, json=completion("<Real><reason>ok</reason>"))

    async def many():
        client = HttpTeacher(settings(max_in_flight=3), transport=httpx.MockTransport(handler))
        try:
            await asyncio.gather(*(client.complete(request()) for _ in range(12)))
        finally:
            await client.aclose()
        return client

    client = run(many())
    assert client.requests == 12 and state["peak"] == 3


def test_rate_limiter_spaces_request_starts(monkeypatch):
    now = {"t": 100.0}
    sleeps = []

    async def fake_sleep(seconds):
        sleeps.append(seconds)
        now["t"] += seconds

    monkeypatch.setattr(teacher_module.time, "monotonic", lambda: now["t"])
    monkeypatch.setattr(teacher_module.asyncio, "sleep", fake_sleep)

    async def five():
        limiter = RateLimiter(per_minute=120)  # one start every 0.5 s
        starts = []
        for _ in range(5):
            await limiter.wait()
            starts.append(now["t"])
        return starts

    starts = run(five())
    assert np.allclose(np.diff(starts), 0.5)
    assert RateLimiter(None).interval == 0.0


def test_the_rollout_servers_openai_endpoint_reads_our_requests():
    """Wire compatibility with rollout_server's POST /v1/chat/completions (the lead runs the end-to-end
    check): a second trajectory turn with the dataset image, an assistant tool call and a tool picture."""
    from rft.annotate import prompts
    from rft.tools import tool_schemas
    from rollout_server.openai_compat import ChatRequest, prompt_inputs

    face, spectrum = np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 200, np.uint8)
    call = '<think>Flat face.</think>\n<tool_call>\n{"name": "FFTTool", "arguments": {}}\n</tool_call>'
    messages = [
        {"role": "system", "content": prompts.annotation_system_prompt(3)},
        {
            "role": "user",
            "content": [image_part(png_data_url(face)), text_part("This is the image ... Hint: x.")],
        },
        {"role": "assistant", "content": call},
        {
            "role": "user",
            "content": [image_part(png_data_url(spectrum)), text_part("This is the result of FFTTool.")],
        },
    ]
    client = HttpTeacher(settings(send_tool_schemas=True))
    body = client.payload(TeacherRequest("tool_trajectory", messages, tools=tool_schemas()))
    request = ChatRequest.model_validate_json(json.dumps(body))
    (parsed, images), tools, sampling = prompt_inputs(request), request.tools, request.settings()
    assert (sampling.max_tokens, sampling.temperature) == (1024, 0.7)
    assert [m["role"] for m in parsed] == ["system", "user", "assistant", "user"]
    assert [np.asarray(image.convert("RGB"))[0, 0, 0] for image in images] == [0, 200]
    assert len(tools) == 6
    run(client.aclose())

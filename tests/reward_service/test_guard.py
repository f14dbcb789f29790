"""What a request passes before the service parses it, without a service: its token, its size, and how a
malformed body is described (one bounded line naming the field, typed problems without the input)."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.requests import Request

from reward_service.api import ScoreRequest, ToolRequest
from reward_service.guard import HttpError, authorize, parse_body, read_body


class Body:
    """An ASGI request whose body arrives in `chunks`; `received` counts the chunks the server asked for."""

    def __init__(self, chunks: list[bytes], headers: dict[str, str] | None = None) -> None:
        self.messages = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ]
        self.received = 0
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/score",
            "query_string": b"",
            "headers": [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()],
        }
        self.request = Request(scope, self.receive)

    async def receive(self) -> dict:
        self.received += 1
        return self.messages[self.received - 1]


def read(body: Body, limit: int) -> bytes:
    return asyncio.run(read_body(body.request, limit))


def test_a_body_within_the_limit_is_read_whole():
    body = Body([b"ab", b"cd"], {"Content-Length": "4"})
    assert read(body, 4) == b"abcd"


def test_a_declared_length_over_the_limit_is_refused_before_reading_anything():
    body = Body([b"x" * 10], {"Content-Length": "101"})
    with pytest.raises(HttpError) as refused:
        read(body, 100)
    assert refused.value.status == 413 and body.received == 0


@pytest.mark.parametrize("declared", ["9" * 5000, "0" * 5000 + "1" * 4])
def test_an_absurd_declared_length_is_a_413_not_a_crash(declared):
    with pytest.raises(HttpError) as refused:
        read(Body([b""], {"Content-Length": declared}), 100)
    assert refused.value.status == 413 and len(refused.value.message) < 200


def test_a_streamed_body_is_cut_off_once_it_passes_the_limit():
    body = Body([b"x" * 40] * 5)  # chunked: no Content-Length
    with pytest.raises(HttpError) as refused:
        read(body, 100)
    assert refused.value.status == 413 and body.received == 3


def test_a_content_length_that_is_not_a_number_is_a_400():
    with pytest.raises(HttpError) as refused:
        read(Body([b""], {"Content-Length": "²"}), 100)
    assert refused.value.status == 400


def test_without_a_token_anyone_passes_and_with_one_only_its_bearer():
    authorize(Body([b""]).request, None)
    authorize(Body([b""], {"Authorization": "Bearer t0k"}).request, "t0k")
    for headers, status in (({}, 401), ({"Authorization": "Bearer nope"}, 403)):
        with pytest.raises(HttpError) as refused:
            authorize(Body([b""], headers).request, "t0k")
        assert refused.value.status == status


def score_body(**changes: object) -> bytes:
    body = {
        "request_id": "a",
        "method": "dt_grpo",
        "rollouts": [{"id": "r0", "label": "live", "turns": ["<Real><reason>ok</reason>"]}],
    }
    return json.dumps({**body, **changes}).encode()


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (ScoreRequest, score_body(max_tool_calls="3"), "max_tool_calls"),
        (ScoreRequest, score_body(max_tool_calls=3.0), "max_tool_calls"),
        (ScoreRequest, score_body(max_tool_calls=True), "max_tool_calls"),
        (ScoreRequest, score_body(request_id=7), "request_id"),
        (ScoreRequest, score_body(coefficients={"beta_fast": "0.5"}), "coefficients.beta_fast"),
        (
            ScoreRequest,
            score_body(rollouts=[{"id": "r0", "label": "live", "turns": "<Real>"}]),
            "rollouts.0.turns",
        ),
        (
            ScoreRequest,
            score_body(rollouts=[{"id": "r0", "label": "live", "turns": ["x"], "completion_tokens": "12"}]),
            "rollouts.0.completion_tokens",
        ),
        (
            ScoreRequest,
            score_body(rollouts=[{"id": "r0", "label": "live", "turns": ["x" * (256 * 1024 + 1)]}]),
            "rollouts.0.turns.0",
        ),
        (
            ScoreRequest,
            score_body(rollouts=[{"id": "r0", "label": "live", "turns": ["x"] * 65}]),
            "rollouts.0.turns",
        ),
        (ToolRequest, b'{"name": "FFTTool", "image_png": "AAAA", "output_size": "224"}', "output_size"),
        (ToolRequest, b'{"name": "FFTTool", "image_png": "AAAA", "output_size": 224.0}', "output_size"),
        (ToolRequest, b'{"name": ["FFTTool"], "image_png": "AAAA"}', "name"),
    ],
)
def test_wrong_types_are_refused_with_one_line_naming_the_field(model, body, field):
    with pytest.raises(HttpError) as refused:
        parse_body(model, body)
    error = refused.value
    assert error.status == 422 and error.message.startswith(f"{field}:") and "\n" not in error.message
    assert field.split(".")[-1] in [str(part) for part in error.detail[0]["loc"]]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_coefficients_are_refused(value):
    body = score_body().replace(
        b'"rollouts"', b'"coefficients": {"beta_fast": ' + value.encode() + b'}, "rollouts"'
    )
    with pytest.raises(HttpError) as refused:
        parse_body(ScoreRequest, body)
    assert refused.value.message.startswith("coefficients.beta_fast")


def test_a_refusal_never_echoes_a_huge_input():
    hostile_key = "k" * 100_000
    body = score_body(coefficients={hostile_key: "x" * 100_000}, request_id="y" * 100_000)
    with pytest.raises(HttpError) as refused:
        parse_body(ScoreRequest, body)
    assert len(json.dumps(refused.value.body())) < 10_000

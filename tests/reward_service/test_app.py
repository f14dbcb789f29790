"""How a replica answers, without Ray: a refusal with its status and one line, a bug as a logged, counted 500
that tells the client nothing but the error's type."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from starlette.requests import Request

from reward_service import app
from reward_service.guard import HttpError


def answer(respond, token: str | None = None, headers: dict[str, str] | None = None):
    """`RewardServer._answer` on a stand-in replica; returns the response and the metrics events."""
    events: list[tuple] = []
    replica = SimpleNamespace(token=token, report=lambda *event: events.append(event))
    raw = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    request = Request(
        {"type": "http", "method": "POST", "path": "/v1/score", "headers": raw, "query_string": b""}
    )
    response = asyncio.run(app.RewardServer.func_or_class._answer(replica, "score", request, respond))
    return response, events


def test_a_bug_is_a_logged_counted_500_that_says_only_its_type(caplog):
    async def bug():
        raise KeyError("internal detail " * 100)

    response, events = answer(bug)
    assert response.status_code == 500 and json.loads(response.body) == {"error": "internal error (KeyError)"}
    assert [event[:3] for event in events] == [("request", "score", "500")]
    [logged] = [record for record in caplog.records if record.levelname == "ERROR"]
    assert logged.getMessage() == "POST /v1/score failed" and logged.exc_info[0] is KeyError


def test_a_refusal_is_its_status_and_one_line():
    async def refused():
        raise HttpError(409, "request_id 'a' was already used\nfor another batch")

    response, events = answer(refused)
    assert response.status_code == 409
    assert json.loads(response.body) == {"error": "request_id 'a' was already used for another batch"}
    assert [event[:3] for event in events] == [("request", "score", "409")]


def test_the_token_is_checked_before_anything_is_done():
    called = []

    async def work():
        called.append(True)

    response, events = answer(work, token="t0k", headers={"Authorization": "Bearer other"})
    assert response.status_code == 403 and not called
    assert [event[:3] for event in events] == [("request", "score", "403")]


def test_made_up_tool_names_share_one_metrics_label():
    assert app.tool_label("FFTTool") == "FFTTool"
    assert app.tool_label("x" * 30) == app.tool_label("Nope") == "unknown"

"""Fixtures of the annotation tests (the tiny synthetic benchmark is suite-wide, tests/conftest.py):
random-initialised experts, and a scripted OpenAI-compatible teacher that can be served in-process
(httpx.MockTransport) or on 127.0.0.1 (uvicorn).

The scripted teacher reads what a real one would read - the system prompt (which task), the hint (which
label), how many turns it has written - and answers in a mode the test chooses per (task, attempt): a valid
annotation, garbage, a leak, a wrong answer, an invalid tool call, a timeout, an HTTP error.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from rft.experts.bank import Expert, save_expert
from rft.experts.model import ExpertArchitecture, ExpertCNN

GOOD = "good"


@pytest.fixture(scope="session")
def experts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained experts for two tools: the pipeline only needs probabilities, not good ones."""
    import torch

    folder = tmp_path_factory.mktemp("experts")
    architecture = ExpertArchitecture(input_size=32, channels=(4, 8), hidden=8)
    for seed, tool in enumerate(("FFTTool", "LBPTool")):
        torch.manual_seed(seed)
        save_expert(folder, Expert(tool, architecture, ExpertCNN(architecture).eval(), {"fingerprint": tool}))
    return folder


# ------------------------------------------------------------------------------- scripted teacher


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def task_of(messages: list[dict[str, Any]]) -> str:
    system = _text(messages[0]["content"])
    if "holistic pattern analysis" in system:
        return "caption_vanilla"
    if "seasoned forensic expert" in system:
        return "caption_reasoning"
    if "## Available Tools" in system:
        return "tool_trajectory"
    return "knowledge_transfer"


def label_of(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        text = _text(message["content"])
        if "Hint: real face" in text or "given a live image" in text or "a real image" in text:
            return "live"
        if "Hint:" in text or "given a spoof image" in text or "a spoofed image" in text:
            return "spoof"
    raise AssertionError("the request says nothing about the label")


CLASS = {"live": "<Real>", "spoof": "<Spoof>"}
VERDICT = {"live": "the image is a real face", "spoof": "the image is a spoof"}


def good_reply(task: str, label: str, assistant_turns: int) -> str:
    if task == "knowledge_transfer":
        return f"{CLASS[label]}<reason>The skin texture and shading support this decision.</reason>"
    if task == "tool_trajectory":
        if assistant_turns == 0:
            call = {"name": "FFTTool", "arguments": {"expectation": "periodic peaks from a screen"}}
            return f"<think>The face looks slightly flat.</think><tool_call>{json.dumps(call)}</tool_call>"
        return f"<think>The spectrum settles it.</think><answer>{CLASS[label]}</answer>"
    if task == "caption_vanilla":
        return f"The texture and the lighting were examined closely. Overall, {VERDICT[label]}."
    stages = ["Initial observation", "Artifact detection", "Feature analysis", "Examine lighting and shadows"]
    body = "\n".join(f"{i}. {name}: nothing unusual beyond the evidence." for i, name in enumerate(stages, 1))
    return f"{body}\n5. Consider context: a plain setting.\n6. Final judgment: {VERDICT[label]}."


def bad_reply(mode: str, task: str, label: str, assistant_turns: int) -> str:
    other = "spoof" if label == "live" else "live"
    if mode == "garbage":
        return "Sure! Here is my analysis: it depends."
    if mode == "leak_hint":
        return good_reply(task, label, assistant_turns).replace("The", "As the hint says, the", 1)
    if mode == "leak_expert":
        if task == "tool_trajectory" and assistant_turns > 0:
            return f"<think>The expert predicts 87% here.</think><answer>{CLASS[label]}</answer>"
        return good_reply(task, label, assistant_turns)
    if mode == "wrong":
        return good_reply(task, other, assistant_turns)
    if mode == "invalid_tool":
        call = {"name": "ZoomInTool", "arguments": {"bbox": "the eyes"}}
        return f"<think>Look closer.</think><tool_call>{json.dumps(call)}</tool_call>"
    if mode == "never_answer":
        call = {"name": "LBPTool", "arguments": {}}
        return f"<think>More texture.</think><tool_call>{json.dumps(call)}</tool_call>"
    if mode == "no_stages":
        return f"It looks fine to me and {VERDICT[label]}."
    raise AssertionError(f"unknown mode {mode}")


@dataclass
class ScriptedTeacher:
    """The brain of the fake endpoint. `script[task]` lists the mode of each attempt (then 'good')."""

    script: dict[str, list[str]] = field(default_factory=dict)
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def mode(self, task: str, messages: list[dict[str, Any]]) -> str:
        image = hashlib.sha1(json.dumps(messages[1]["content"]).encode()).hexdigest()
        if not any(m["role"] == "assistant" for m in messages):
            self.attempts[(task, image)] += 1
        attempt = self.attempts[(task, image)]
        modes = self.script.get(task, [])
        return modes[attempt - 1] if attempt <= len(modes) else GOOD

    def respond(self, body: dict[str, Any]) -> tuple[int, Any, float]:
        """(status, JSON body or raw text, seconds to wait before answering)."""
        self.requests.append(body)
        messages = body["messages"]
        task = task_of(messages)
        mode = self.mode(task, messages)
        if mode == "sleep":
            return 200, None, self.delay_s
        if mode == "http500":
            return 500, "internal error", 0.0
        if mode == "http401":
            return 401, "bad key", 0.0
        if mode == "not_json":
            return 200, "<html>oops</html>", 0.0
        turns = sum(1 for m in messages if m["role"] == "assistant")
        label = label_of(messages)
        text = good_reply(task, label, turns) if mode == GOOD else bad_reply(mode, task, label, turns)
        completion = {
            "id": "x",
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        return 200, completion, 0.0


def _response(status: int, payload: Any) -> httpx.Response:
    if isinstance(payload, str):
        return httpx.Response(status, text=payload)
    return httpx.Response(status, json=payload)


def mock_transport(brain: ScriptedTeacher) -> httpx.MockTransport:
    """The scripted teacher in-process; a 'sleep' answer becomes an immediate read timeout."""

    def handler(request: httpx.Request) -> httpx.Response:
        status, payload, delay = brain.respond(json.loads(request.content))
        if delay:
            raise httpx.ReadTimeout("scripted timeout", request=request)
        return _response(status, payload)

    return httpx.MockTransport(handler)


@pytest.fixture
def served_teacher():
    """Start the scripted teacher behind FastAPI + uvicorn on 127.0.0.1; yields (brain, base_url)."""
    brain = ScriptedTeacher()
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        status, payload, delay = brain.respond(await request.json())
        if delay:
            await asyncio.sleep(delay)
            return JSONResponse({"error": "too late"}, status_code=200)
        if isinstance(payload, str):
            return PlainTextResponse(payload, status_code=status)
        return JSONResponse(payload, status_code=status)

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the scripted teacher did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield brain, f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)

"""Teachers: who writes the annotations.

`HttpTeacher` talks to any OpenAI-compatible `POST {base_url}/chat/completions` (Gemini's and vLLM's
OpenAI endpoints, the project's rollout server): images go as `data:image/png;base64,...` `image_url` parts,
with at most `max_in_flight` requests open at once and at most `requests_per_minute` started per minute.
`rft.annotate.templated.TemplatedTeacher` is the offline writer with the same interface.

Failures of one request come back as `TeacherFailure` with a drop reason (timeout, HTTP error, a body that is
not a chat completion): the sample's attempt fails and the pipeline re-annotates it once. Failures that no
retry of a sample can fix (bad credentials, wrong URL or model, a server that stays unreachable) are
`TeacherFatal`, which stops the run; the journal keeps what was done, so a rerun continues.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rft.annotate.verify import Reason
from rft.errors import RftError

# HTTP statuses that a later retry of the same request may cure.
TRANSIENT_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
# Statuses that say the configuration is wrong: every request would fail the same way.
FATAL_STATUSES = {401, 403, 404}
MAX_BACKOFF_S = 30.0
ERROR_BODY_CHARS = 200


class TeacherSettings(BaseModel):
    """How to reach an OpenAI-compatible teacher and how hard to push it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(..., description="e.g. http://127.0.0.1:8000/v1 (…/chat/completions is appended)")
    model: str = Field(..., min_length=1, description="the `model` field of each request")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="environment variable holding the bearer token (unset: no header)"
    )
    timeout_s: float = Field(120.0, gt=0, le=3600, description="per request, connect to last byte")
    max_in_flight: int = Field(4, ge=1, le=1024, description="requests open at the same time")
    requests_per_minute: float | None = Field(60.0, gt=0, description="started per minute; None: no limit")
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(1024, ge=16, le=65536)
    http_retries: int = Field(2, ge=0, le=10, description="retries of 429/5xx/connection errors per request")
    send_tool_schemas: bool = Field(
        False, description="also pass the tools as the OpenAI `tools` field (the prompt lists them anyway)"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/").removesuffix("/chat/completions")


@dataclass
class TeacherRequest:
    """One chat completion to write: the OpenAI messages, the task, and (for the templated writer only) what
    is known about the sample. An HTTP teacher sees nothing but `messages`."""

    task: str
    messages: list[dict[str, Any]]
    context: Any = None
    tools: list[dict[str, Any]] | None = None


@dataclass
class TeacherReply:
    text: str
    usage: dict[str, int] = field(default_factory=dict)


class TeacherFailure(Exception):
    """This request failed; the sample's attempt fails with `reason`."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TeacherFatal(RftError):
    """The teacher cannot serve any request as configured; the run stops (and can be resumed)."""


class Teacher(Protocol):
    source: str  # the `source` column of the stored rows: 'teacher:<model>' or 'templated'

    async def complete(self, request: TeacherRequest) -> TeacherReply: ...

    async def aclose(self) -> None: ...


# ------------------------------------------------------------------------------------------ images


def png_data_url(image: Image.Image | np.ndarray) -> str:
    """`data:image/png;base64,...` of an RGB image (lossless, so the teacher sees what the tools saw)."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    buffer = io.BytesIO()
    picture.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_part(data_url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": data_url}}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


# ------------------------------------------------------------------------------------ rate limit


class RateLimiter:
    """Spaces request starts at least 60 / `per_minute` seconds apart (a smooth, burst-free limit)."""

    def __init__(self, per_minute: float | None) -> None:
        self.interval = 0.0 if per_minute is None else 60.0 / per_minute
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if self.interval <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


# ------------------------------------------------------------------------------------------ reply


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers return content as parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _tool_call_text(call: Any) -> str:
    function = call.get("function", {}) if isinstance(call, dict) else {}
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        # Left as text when it does not decode: the turn's verification rejects it as an invalid call.
        with contextlib.suppress(ValueError):
            arguments = json.loads(arguments)
    payload = json.dumps({"name": function.get("name"), "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{payload}\n</tool_call>"


def reply_text(body: Any) -> tuple[str, dict[str, int]]:
    """The assistant text of a chat-completion body. A structured `tool_calls` answer (OpenAI function calling)
    becomes the Hermes text of the training format, its content the <think> part. Raises TeacherFailure for a
    body that is not a chat completion or holds no text at all."""
    try:
        message = body["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise TeacherFailure(Reason.TEACHER_BAD_RESPONSE, "no choices[0].message in the response") from None
    if not isinstance(message, dict):
        raise TeacherFailure(Reason.TEACHER_BAD_RESPONSE, "choices[0].message is not an object")
    text = _content_text(message.get("content")).strip()
    calls = message.get("tool_calls") or []
    if calls:
        if text and "<think>" not in text:
            text = f"<think>{text}</think>"
        text = "\n".join([text, *(_tool_call_text(call) for call in calls)]).strip()
    if not text:
        raise TeacherFailure(Reason.TEACHER_BAD_RESPONSE, "empty reply")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return text, {k: v for k, v in usage.items() if isinstance(v, int)}


# ------------------------------------------------------------------------------------------ HTTP


class HttpTeacher:
    """An OpenAI-compatible chat-completions teacher over httpx (async)."""

    def __init__(self, settings: TeacherSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.source = f"teacher:{settings.model}"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(settings.api_key_env) if settings.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.AsyncClient(
            base_url=settings.base_url,
            headers=headers,
            timeout=httpx.Timeout(settings.timeout_s),
            transport=transport,
            limits=httpx.Limits(max_connections=settings.max_in_flight),
        )
        self._in_flight = asyncio.Semaphore(settings.max_in_flight)
        self._rate = RateLimiter(settings.requests_per_minute)
        self.requests = 0

    def payload(self, request: TeacherRequest) -> dict[str, Any]:
        body = {
            "model": self.settings.model,
            "messages": request.messages,
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        }
        if self.settings.send_tool_schemas and request.tools:
            body["tools"] = request.tools
        return body

    async def complete(self, request: TeacherRequest) -> TeacherReply:
        body = self.payload(request)
        for attempt in range(self.settings.http_retries + 1):
            outcome = await self._try_once(body, last_try=attempt == self.settings.http_retries)
            if isinstance(outcome, TeacherReply):
                return outcome
            # The server's Retry-After when it gave one, else exponential backoff: 1, 2, 4 ... seconds.
            await asyncio.sleep(outcome if outcome is not None else min(2.0**attempt, MAX_BACKOFF_S))
        raise AssertionError("unreachable: the last try returns or raises")

    async def _try_once(self, body: dict[str, Any], last_try: bool) -> TeacherReply | float | None:
        """The reply, or the server's wait before the next try (None: back off); raises when no try is left."""
        await self._rate.wait()
        async with self._in_flight:
            self.requests += 1
            try:
                response = await self._client.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                raise TeacherFailure(
                    Reason.TEACHER_TIMEOUT, f"no reply within {self.settings.timeout_s:g} s"
                ) from None
            except httpx.TransportError as error:
                if last_try:
                    raise TeacherFatal(
                        f"teacher unreachable at {self.settings.base_url}: {type(error).__name__}: {error}"
                    ) from None
                return None
        return self._handle(response, last_try)

    def _handle(self, response: httpx.Response, last_try: bool) -> TeacherReply | float | None:
        status = response.status_code
        if status in FATAL_STATUSES:
            raise TeacherFatal(
                f"teacher at {self.settings.base_url} answered HTTP {status} ({_short(response.text)}): "
                "check the URL, the model name and the API key"
            )
        if status in TRANSIENT_STATUSES and not last_try:
            return _retry_after(response.headers.get("retry-after"))
        if status != 200:
            raise TeacherFailure(Reason.TEACHER_HTTP_ERROR, f"HTTP {status}: {_short(response.text)}")
        try:
            body = response.json()
        except ValueError:
            raise TeacherFailure(Reason.TEACHER_BAD_RESPONSE, f"not JSON: {_short(response.text)}") from None
        text, usage = reply_text(body)
        return TeacherReply(text=text, usage=usage)

    async def aclose(self) -> None:
        await self._client.aclose()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (capped); None when absent or given as an HTTP date."""
    try:
        return min(max(float(value), 0.0), MAX_BACKOFF_S) if value else None
    except ValueError:
        return None


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= ERROR_BODY_CHARS else flat[:ERROR_BODY_CHARS] + "..."

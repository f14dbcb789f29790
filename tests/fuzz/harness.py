"""Schemathesis against a running service's own OpenAPI schema, with a fixed budget.

Every operation of the schema gets: the schema's own examples (valid bodies), then `budget` cases that fit
the schema (positive) and `budget` that do not (negative), generated derandomized, so that the same code
always sends the same requests. A case passes when the service answers below 500 within `timeout_s`; a 5xx
or a request that times out is recorded, not raised, so that one bug does not stop the run (nor make
Hypothesis spend the budget shrinking it). `prepare` may rewrite a positive case, e.g. put a real image into
it so that the request reaches the model instead of stopping at the image decoder.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from PIL import Image
from schemathesis import GenerationMode

from rft.codec import encode_png

Prepare = Callable[[Any, bool], Any]
# A real image, and a seeded greedy request of the rollout server whose answer must not change.
PNG = encode_png(Image.fromarray((np.arange(48 * 48 * 3) % 251).astype(np.uint8).reshape(48, 48, 3)))
GREEDY = {
    "images": [PNG],
    "n": 1,
    "messages": [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Real or spoof?"}]}
    ],
    "sampling": {"max_tokens": 24, "temperature": 0.0, "seed": 7},
}


def greedy_sample(url: str, timeout_s: float) -> list[int]:
    """The rollout server's token ids for GREEDY."""
    reply = requests.post(url + "/v1/samples", json=GREEDY, timeout=timeout_s)
    assert reply.status_code == 200, reply.text[:300]
    return reply.json()["groups"][0]["completions"][0]["token_ids"]


@dataclass
class FuzzReport:
    """Statuses answered per route (`POST /v1/samples`) and what failed: 5xx answers and timeouts."""

    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[str] = field(default_factory=list)

    def record(self, route: str, status: int | str, sent: Any) -> None:
        self.statuses[route][status] += 1
        if status == "timeout" or (isinstance(status, int) and status >= 500):
            self.failures.append(f"{route} -> {status}: {short_body(sent)}")

    def requests_per_route(self) -> dict[str, int]:
        return {route: sum(counts.values()) for route, counts in sorted(self.statuses.items())}

    def table(self) -> str:
        lines = [f"{'route':32} {'requests':>8}  statuses"]
        for route, counts in sorted(self.statuses.items()):
            shown = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items(), key=str))
            lines.append(f"{route:32} {sum(counts.values()):8}  {shown}")
        return "\n".join(lines)


def short_body(body: Any, limit: int = 300) -> str:
    text = body[:limit].hex() if isinstance(body, bytes) else json.dumps(body, default=str)
    return text[:limit]


def load_schema(url: str, token: str) -> dict[str, Any]:
    """The service's own schema, fetched with its token (it is not public on a service with one)."""
    reply = requests.get(url + "/openapi.json", headers=bearer(token), timeout=30)
    reply.raise_for_status()
    return reply.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def fuzz_service(
    raw_schema: dict[str, Any],
    url: str,
    token: str,
    *,
    budget: dict[str, int],
    timeout_s: float,
    prepare: Prepare | None = None,
) -> FuzzReport:
    """Fuzz every operation of `raw_schema` on `url` with the token; `budget` maps a route (`POST /v1/x`) to
    the cases of each generation mode ('default' for the others)."""
    schema = schemathesis.openapi.from_dict(raw_schema)
    report = FuzzReport()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            route = f"{operation.method.upper()} {operation.path}"
            send = _sender(session, url, token, timeout_s, report, route)
            for example in _examples(raw_schema, operation.path, operation.method):
                send(operation.Case(body=example, media_type="application/json"))
            cases = budget.get(route, budget["default"])
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _run_cases(operation, mode, cases, send, prepare)
    return report


def _sender(
    session: requests.Session, url: str, token: str, timeout_s: float, report: FuzzReport, route: str
) -> Callable[[Any], None]:
    def send(case: Any) -> None:
        try:
            reply = case.call(base_url=url, session=session, headers=bearer(token), timeout=timeout_s)
            status: int | str = reply.status_code
        except requests.Timeout:
            status = "timeout"
        report.record(route, status, case.body)

    return send


def _run_cases(
    operation: Any, mode: GenerationMode, cases: int, send: Callable[[Any], None], prepare: Prepare | None
) -> None:
    strategy = operation.as_strategy(generation_mode=mode)
    if prepare is not None and mode is GenerationMode.POSITIVE:
        strategy = st.tuples(strategy, st.booleans()).map(lambda pair: prepare(*pair))

    @settings(
        max_examples=cases,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        send(case)

    try:
        run()
    except Unsatisfiable:  # nothing to get wrong: a GET without parameters has no negative case
        assert mode is GenerationMode.NEGATIVE, operation.label


def _examples(raw_schema: dict[str, Any], path: str, method: str) -> list[Any]:
    body = raw_schema["paths"][path][method.lower()].get("requestBody", {})
    media = body.get("content", {}).get("application/json", {})
    return [example["value"] for example in media.get("examples", {}).values()]

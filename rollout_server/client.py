"""Client of one or more rollout workers: spreads prompts over the live workers, moves the prompts of a
worker that dies to another, and pushes weight updates to every worker.

Generation is not idempotent (a resent prompt is sampled afresh), which is harmless for GRPO: a prompt's
group is used once, whichever worker produced it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import requests
import torch
from PIL import Image

from rft.codec import encode_png
from rft.rollout.episode import Episode
from rft.rollout.sampling import SampleResponse, Sampling
from rollout_server.api import EpisodeRequest, EpisodeResponse, SampleRequest, episode_from_wire
from rollout_server.weights import weights_payload

log = logging.getLogger(__name__)


class RolloutServerError(RuntimeError):
    """A worker refused a request (4xx, with its reason), or no worker is left alive."""


class RolloutClient:
    def __init__(
        self,
        urls: Sequence[str] | str,
        *,
        token: str | None = None,
        timeout_s: float = 600.0,
        prompts_per_request: int = 8,
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.alive = list(self.urls)
        self.token = token
        self.timeout_s = timeout_s
        self.prompts_per_request = prompts_per_request
        self.failovers = 0  # requests moved to another worker, for logs and tests
        self._lock = threading.Lock()
        self._next = 0

    # -- readiness -------------------------------------------------------------------------------------
    def wait_ready(self, timeout_s: float = 600.0) -> dict[str, dict]:
        """Wait until every worker answers /readyz; returns each worker's answer (weights version, tool-call
        limit) by URL."""
        deadline = time.monotonic() + timeout_s
        pending = set(self.urls)
        answers: dict[str, dict] = {}
        while pending:
            for url in list(pending):
                try:
                    reply = requests.get(url + "/readyz", timeout=5)
                    if reply.status_code == 200:
                        answers[url] = reply.json()
                        pending.discard(url)
                except (requests.RequestException, ValueError):
                    pass
            if pending and time.monotonic() > deadline:
                raise RolloutServerError(
                    f"rollout workers not ready after {timeout_s:.0f} s: {sorted(pending)}"
                )
            if pending:
                time.sleep(1.0)
        return answers

    # -- sampling --------------------------------------------------------------------------------------
    def samples(
        self, messages: list[dict], images: Sequence[Image.Image], *, n: int, sampling: Sampling | None = None
    ) -> SampleResponse:
        """n single-turn completions per image (paper 001)."""
        sampling = sampling or Sampling()
        chunks = self._chunks(images)
        bodies = [
            SampleRequest(messages=messages, images=[encode_png(i) for i in chunk], n=n, sampling=sampling)
            for chunk in chunks
        ]
        replies = self._spread("/v1/samples", [b.model_dump_json() for b in bodies])
        parsed = [SampleResponse.model_validate_json(reply) for reply in replies]
        return SampleResponse(
            groups=[group for reply in parsed for group in reply.groups],
            weights_version=min(reply.weights_version for reply in parsed),
        )

    def episodes(
        self, images: Sequence[Image.Image], *, n: int, sampling: Sampling | None = None
    ) -> tuple[list[list[Episode]], int]:
        """n paper-003 episodes per image, and the lowest weights version that produced them."""
        sampling = sampling or Sampling()
        bodies = [
            EpisodeRequest(images=[encode_png(i) for i in chunk], n=n, sampling=sampling).model_dump_json()
            for chunk in self._chunks(images)
        ]
        parsed = [
            EpisodeResponse.model_validate_json(reply) for reply in self._spread("/v1/episodes", bodies)
        ]
        groups = [[episode_from_wire(e) for e in group] for reply in parsed for group in reply.groups]
        return groups, min(reply.weights_version for reply in parsed)

    # -- weights ---------------------------------------------------------------------------------------
    def update_weights(self, state_dict: Mapping[str, torch.Tensor]) -> int:
        """Push full weights (HF names) to every live worker; returns the new weights version."""
        payload = weights_payload(state_dict)
        versions = [
            self._post_admin(url, "/v1/weights", payload, "application/octet-stream")["weights_version"]
            for url in list(self.alive)
        ]
        return min(versions)

    def load_adapter(self, name: str, path: str) -> int:
        """Load a PEFT adapter folder (readable by the workers) on every live worker."""
        import json

        body = json.dumps({"name": name, "path": str(path)}).encode()
        versions = [
            self._post_admin(url, "/v1/adapters", body, "application/json")["weights_version"]
            for url in list(self.alive)
        ]
        return min(versions)

    # -- plumbing --------------------------------------------------------------------------------------
    def _chunks(self, images: Sequence[Image.Image]) -> list[list[Image.Image]]:
        size = max(1, min(self.prompts_per_request, -(-len(images) // max(1, len(self.alive)))))
        return [list(images[i : i + size]) for i in range(0, len(images), size)]

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"content-type": content_type}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    def _post_admin(self, url: str, path: str, body: bytes, content_type: str) -> dict[str, Any]:
        reply = requests.post(
            url + path, data=body, headers=self._headers(content_type), timeout=self.timeout_s
        )
        if reply.status_code != 200:
            raise RolloutServerError(f"{url}{path}: {reply.status_code} {reply.text[:300]}")
        return reply.json()

    def _pick(self, avoid: set[str]) -> str:
        with self._lock:
            candidates = [url for url in self.alive if url not in avoid] or list(self.alive)
            if not candidates:
                raise RolloutServerError(f"no rollout worker left alive (tried {self.urls})")
            self._next = (self._next + 1) % len(candidates)
            return candidates[self._next]

    def _mark_dead(self, url: str, problem: str) -> None:
        with self._lock:
            if url in self.alive:
                self.alive.remove(url)
                log.warning("rollout worker %s is down (%s); its requests go to the others", url, problem)

    def _send(self, path: str, body: str) -> bytes:
        tried: set[str] = set()
        while True:
            url = self._pick(tried)
            try:
                reply = requests.post(
                    url + path, data=body, headers=self._headers("application/json"), timeout=self.timeout_s
                )
            except requests.RequestException as error:
                self._mark_dead(url, type(error).__name__)
                tried.add(url)
                self.failovers += 1
                continue
            if reply.status_code == 503:  # still starting: not dead, ask again shortly
                time.sleep(1.0)
                continue
            if reply.status_code >= 500:
                self._mark_dead(url, f"HTTP {reply.status_code}")
                tried.add(url)
                self.failovers += 1
                continue
            if reply.status_code != 200:
                raise RolloutServerError(f"{url}{path}: {reply.status_code} {reply.text[:300]}")
            return reply.content

    def _spread(self, path: str, bodies: list[str]) -> list[bytes]:
        workers = max(1, len(self.alive))
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(bodies), 4 * workers)) as pool:
            return list(pool.map(lambda body: self._send(path, body), bodies))

"""Client of one or more rollout workers: spreads prompts over the live workers, moves the prompts of a
failing worker to another, and pushes weight updates to every worker.

A 4xx is the caller's fault: it is raised at once with the server's message and the worker stays in the
pool. A 5xx, a timeout or a refused connection makes the worker a suspect: its request goes elsewhere, and
the worker is probed (`/readyz`) after a back-off that doubles on each failed probe, and comes back once it
answers. A worker that missed a weight push (it was a suspect then, or restarted with its start-up weights)
comes back at the next push, so rollouts never mix weights.

Generation is not idempotent (a resent prompt is sampled afresh), which is harmless for GRPO: a prompt's
group is used once, whichever worker produced it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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
    """A worker refused a request (4xx, with its reason), or no worker could serve it in time."""


BACKOFF_FIRST_S = 5.0
BACKOFF_MAX_S = 120.0
PROBE_TIMEOUT_S = 15.0  # longer than the server's own readiness probe


@dataclass
class Suspect:
    """A worker that failed: probed again at `retry_at` (time.monotonic()), then `backoff_s` later."""

    retry_at: float
    backoff_s: float


class RolloutClient:
    def __init__(
        self,
        urls: Sequence[str] | str,
        *,
        token: str | None = None,
        timeout_s: float = 600.0,
        prompts_per_request: int = 8,
        backoff_s: float = BACKOFF_FIRST_S,
    ) -> None:
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.alive = list(self.urls)
        self.suspects: dict[str, Suspect] = {}
        # Answering, but without the last weight push: back in `alive` once the next push reaches them.
        self.behind: set[str] = set()
        self.token = token
        self.timeout_s = timeout_s
        self.prompts_per_request = prompts_per_request
        self.backoff_s = backoff_s
        self.failovers = 0  # requests moved to another worker, for logs and tests
        self._lock = threading.Lock()
        self._next = 0
        self._pushed = False  # a weight or adapter push happened: a revived worker may be behind

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
                    reply = requests.get(url + "/readyz", timeout=PROBE_TIMEOUT_S)
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
        """Push full weights (HF names) to every worker that answers; returns the new weights version."""
        payload = weights_payload(state_dict)
        return self._push("/v1/weights", payload, "application/octet-stream")

    def load_adapter(self, name: str, path: str) -> int:
        """Load a PEFT adapter folder (readable by the workers) on every worker that answers."""
        import json

        body = json.dumps({"name": name, "path": str(path)}).encode()
        return self._push("/v1/adapters", body, "application/json")

    # -- plumbing --------------------------------------------------------------------------------------
    def _chunks(self, images: Sequence[Image.Image]) -> list[list[Image.Image]]:
        size = max(1, min(self.prompts_per_request, -(-len(images) // max(1, len(self.alive)))))
        return [list(images[i : i + size]) for i in range(0, len(images), size)]

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"content-type": content_type}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    def _push(self, path: str, body: bytes, content_type: str) -> int:
        """POST a policy change to the live workers and to every other worker that answers /readyz now; the
        ones that take it are the live workers afterwards. A 4xx is raised (the same body would be refused
        everywhere); a failing worker becomes a suspect."""
        with self._lock:
            others = [url for url in self.urls if url not in self.alive]
        targets = [url for url in self.urls if url in self.alive or (url in others and self._answers(url))]
        versions: dict[str, int] = {}
        for url in targets:
            try:
                reply = requests.post(
                    url + path, data=body, headers=self._headers(content_type), timeout=self.timeout_s
                )
            except requests.RequestException as error:
                self._suspect(url, type(error).__name__)
                continue
            if reply.status_code >= 500:
                self._suspect(url, f"HTTP {reply.status_code}")
                continue
            if reply.status_code != 200:
                raise RolloutServerError(f"{url}{path}: {reply.status_code} {_reason(reply)}")
            versions[url] = reply.json()["weights_version"]
        with self._lock:
            self._pushed = True
            self.alive = [url for url in self.urls if url in versions]
            self.behind = set()
            for url in versions:
                self.suspects.pop(url, None)
            for url in self.urls:
                if url not in versions and url not in self.suspects:
                    self.suspects[url] = Suspect(time.monotonic() + self.backoff_s, self.backoff_s)
        if not versions:
            raise RolloutServerError(f"no rollout worker took {path} (tried {targets or self.urls})")
        return min(versions.values())

    def _answers(self, url: str) -> bool:
        try:
            return requests.get(url + "/readyz", timeout=PROBE_TIMEOUT_S).status_code == 200
        except requests.RequestException:
            return False

    def _suspect(self, url: str, problem: str) -> None:
        """Take `url` out of service until a probe finds it ready again (after the back-off)."""
        with self._lock:
            if url in self.alive:
                self.alive.remove(url)
                log.warning("rollout worker %s failed (%s); its requests go to the others", url, problem)
            if url not in self.suspects:
                self.suspects[url] = Suspect(time.monotonic() + self.backoff_s, self.backoff_s)

    def _revive_due_suspects(self) -> None:
        """Probe each suspect whose back-off is over: back in service if ready (or `behind`, if it missed a
        weight push), else probed again after twice the back-off."""
        now = time.monotonic()
        with self._lock:
            due = [url for url, suspect in self.suspects.items() if suspect.retry_at <= now]
            for url in due:  # claimed: other threads do not probe it at the same time
                self.suspects[url].retry_at = now + PROBE_TIMEOUT_S
        for url in due:
            ready = self._answers(url)
            with self._lock:
                suspect = self.suspects.pop(url, None)
                if suspect is None:
                    continue
                if not ready:
                    backoff = min(2 * suspect.backoff_s, BACKOFF_MAX_S)
                    self.suspects[url] = Suspect(time.monotonic() + backoff, backoff)
                elif self._pushed:
                    self.behind.add(url)
                    log.warning("rollout worker %s answers again; it serves after the next weight push", url)
                else:
                    self.alive.append(url)
                    log.warning("rollout worker %s is back in service", url)

    def _pick(self, avoid: set[str], deadline: float) -> str:
        while True:
            self._revive_due_suspects()
            with self._lock:
                candidates = [url for url in self.alive if url not in avoid] or list(self.alive)
                if candidates:
                    self._next = (self._next + 1) % len(candidates)
                    return candidates[self._next]
                next_probe = min((s.retry_at for s in self.suspects.values()), default=None)
            if next_probe is None or next_probe > deadline or time.monotonic() > deadline:
                raise RolloutServerError(
                    f"no rollout worker is serving (tried {self.urls}; "
                    f"suspects {sorted(self.suspects)}, behind the last weight push {sorted(self.behind)})"
                )
            time.sleep(max(0.0, min(next_probe - time.monotonic(), 5.0)))

    def _send(self, path: str, body: str) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        tried: set[str] = set()
        while True:
            url = self._pick(tried, deadline)
            try:
                reply = requests.post(
                    url + path, data=body, headers=self._headers("application/json"), timeout=self.timeout_s
                )
            except requests.RequestException as error:
                self._suspect(url, type(error).__name__)
                tried.add(url)
                self.failovers += 1
                continue
            if reply.status_code == 503 and time.monotonic() < deadline:  # still starting: ask again
                time.sleep(1.0)
                continue
            if reply.status_code >= 500:
                self._suspect(url, f"HTTP {reply.status_code}")
                tried.add(url)
                self.failovers += 1
                continue
            if reply.status_code != 200:  # the request's own fault: any worker would refuse it
                raise RolloutServerError(f"{url}{path}: {reply.status_code} {_reason(reply)}")
            return reply.content

    def _spread(self, path: str, bodies: list[str]) -> list[bytes]:
        workers = max(1, len(self.alive))
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(bodies), 4 * workers)) as pool:
            return list(pool.map(lambda body: self._send(path, body), bodies))


def _reason(reply: requests.Response) -> str:
    """The server's one-line `error`, or the start of the body."""
    try:
        return str(reply.json()["error"])[:500]
    except (ValueError, KeyError, TypeError):
        return reply.text[:300]

"""Answers kept by request id, so that a retried request is answered, not recomputed.

A replica scores a request synchronously on its event loop (no await between looking an id up and storing
its answer), so two copies of one request never run at once on one replica: a duplicate either finds the
finished answer here or is itself the first copy. Copies that land on different replicas each compute the
answer, and get the same one, because scoring is a pure function of the request.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Callable
from typing import Generic, TypeVar

from rft.errors import short_repr

Answer = TypeVar("Answer")


class RequestIdReused(ValueError):
    """A request id came back with a different body: a client bug that must not return stale scores."""


def fingerprint(body: bytes) -> str:
    """The identity of a request's body. A retry resends the same bytes (the client serialises a chunk
    once), so hashing the bytes is enough, and cheaper than re-serialising the parsed request."""
    return hashlib.sha256(body).hexdigest()


class IdempotentResults(Generic[Answer]):
    """A least-recently-used map of request id -> (body fingerprint, answer), bounded both in entries and
    in bytes (`size(answer)` plus the id and the fingerprint), so a few huge answers cannot fill a
    replica's memory. An answer larger than `max_bytes` on its own is returned but not kept."""

    def __init__(
        self, capacity: int = 4096, max_bytes: int = 64 << 20, size: Callable[[Answer], int] = len
    ) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.size = size
        self.done: collections.OrderedDict[str, tuple[str, Answer, int]] = collections.OrderedDict()
        self.bytes = 0
        self.hits = 0

    def get_or_compute(self, request_id: str, body_fingerprint: str, compute: Callable[[], Answer]) -> Answer:
        """The answer stored for `request_id`, or `compute()`'s, stored. A failed compute stores nothing.
        Raises RequestIdReused when the id was stored for a body with another fingerprint."""
        seen = self.done.get(request_id)
        if seen is not None:
            if seen[0] != body_fingerprint:
                raise RequestIdReused(
                    f"request_id {short_repr(request_id)} was already used for another batch"
                )
            self.hits += 1
            self.done.move_to_end(request_id)
            return seen[1]
        answer = compute()
        cost = self.size(answer) + len(request_id) + len(body_fingerprint)
        if cost > self.max_bytes:  # it would push every other answer out, then itself
            return answer
        self.done[request_id] = (body_fingerprint, answer, cost)
        self.bytes += cost
        while self.done and (len(self.done) > self.capacity or self.bytes > self.max_bytes):
            self.bytes -= self.done.popitem(last=False)[1][2]
        return answer

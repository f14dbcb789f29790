"""Weight payloads that are wrong in the ways issue #14 lists, sent with the token to the rollout server the
fuzzer used: each is refused with a 4xx, and the engine keeps serving the same model (the seeded greedy
sample is the same as before; /readyz and the weights version unchanged). Last in this folder: on a server
whose updates are not transactional, a refused payload can leave it unable to sample."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import requests
from harness import bearer, greedy_sample
from safetensors import safe_open

pytestmark = pytest.mark.timeout(900)

TIMEOUT_S = 120
NAME = "model.layers.0.mlp.down_proj.weight"  # a real parameter of the tiny Qwen2.5-VL
DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}


def safetensors(tensors: dict[str, np.ndarray]) -> bytes:
    """A safetensors payload written by hand, so that it can hold what the library would refuse to write."""
    header, data = {}, b""
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        header[name] = {
            "dtype": DTYPES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


def bad_payloads(model_dir) -> dict[str, bytes]:
    with safe_open(str(model_dir / "model.safetensors"), "np") as weights:
        shape = weights.get_slice(NAME).get_shape()
    return {
        "not safetensors": b"\x00" * 64,
        "truncated": safetensors({NAME: np.zeros(shape, np.float32)})[:-3],
        "empty": safetensors({}),
        "unknown name": safetensors({"no.such.weight": np.zeros(2, np.float32)}),
        "wrong shape": safetensors({NAME: np.zeros(3, np.float32)}),
        "integers": safetensors({NAME: np.zeros(shape, np.int32)}),
        "not finite": safetensors({NAME: np.full(shape, np.nan, np.float32)}),
    }


def readyz(url: str) -> tuple[int, dict]:
    reply = requests.get(url + "/readyz", timeout=30)
    return reply.status_code, reply.json()


@pytest.mark.parametrize(
    "kind", ["not safetensors", "truncated", "empty", "unknown name", "wrong shape", "integers", "not finite"]
)
def test_a_bad_weight_payload_is_refused_and_the_model_keeps_serving(rollout_server, tiny_qwen_dir, kind):
    url = rollout_server.url
    before, ready = greedy_sample(url, TIMEOUT_S), readyz(url)
    payload = bad_payloads(tiny_qwen_dir)[kind]
    reply = requests.post(
        url + "/v1/weights", data=payload, headers=bearer(rollout_server.token), timeout=TIMEOUT_S
    )
    assert 400 <= reply.status_code < 500, reply.text[:300]
    assert readyz(url) == ready
    assert greedy_sample(url, TIMEOUT_S) == before

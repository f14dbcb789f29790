"""Weight and adapter updates are transactions (issue #14): a payload is checked whole before the model is
touched, a load that fails midway is rolled back, and either way the previous weights keep serving and the
weights version stays."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import torch
from conftest import TOKEN
from protocol_model import protocol_image
from safetensors.torch import load_file, save

from rft.codec import encode_png
from rft.prompts.episodes import first_turn_messages
from rollout_server.weights import (
    TEST_FAIL_AFTER_KEY,
    WeightsRefused,
    check_adapter,
    check_weights,
    served_weight_shapes,
    weights_payload,
)

# The real-server tests also wait for the session's protocol model and a vLLM start-up.
pytestmark = pytest.mark.timeout(1800)

AUTH = {"authorization": f"Bearer {TOKEN}", "content-type": "application/octet-stream"}


@pytest.fixture(scope="module")
def tiny_shapes(model_cache: Path) -> dict[str, tuple[int, ...]]:
    from rft.models.tiny import ensure_tiny_model

    return served_weight_shapes(ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny"))


def test_both_namings_of_the_served_weights_are_known(tiny_shapes) -> None:
    # The checkpoint file's names and the trainer's (transformers' state_dict) both load in vLLM.
    assert tiny_shapes["model.embed_tokens.weight"] == tiny_shapes["model.language_model.embed_tokens.weight"]


def bad_payloads(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[bytes, str]]:
    """{case: (payload, what the refusal must say)}: a valid first tensor, then the bad one."""
    name = "model.language_model.embed_tokens.weight"
    good = {"model.norm.weight": torch.ones(shapes["model.norm.weight"])}
    shape = shapes[name]
    nan = torch.zeros(shape)
    nan[3, 5] = float("nan")
    inf = torch.zeros(shape, dtype=torch.bfloat16)
    inf[0, 0] = float("inf")
    return {
        "unknown name": (save({**good, "model.no_such.weight": torch.zeros(2)}), "'model.no_such.weight'"),
        "wrong shape": (save({**good, name: torch.zeros(shape[0], shape[1] + 1)}), f"'{name}': shape"),
        "NaN": (save({**good, name: nan}), f"'{name}': holds NaN"),
        "infinity": (save({**good, name: inf}), f"'{name}': holds NaN or infinite"),
        "int": (save({**good, name: torch.zeros(shape, dtype=torch.int64)}), f"'{name}': dtype I64"),
        "bool": (save({**good, name: torch.zeros(shape, dtype=torch.bool)}), f"'{name}': dtype BOOL"),
        "no tensors": (save({}), "holds no tensors"),
        "not safetensors": (b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!", "not safetensors"),
    }


def test_bad_payloads_are_refused_naming_the_first_bad_tensor(tiny_shapes) -> None:
    for case, (payload, message) in bad_payloads(tiny_shapes).items():
        with pytest.raises(WeightsRefused) as refused:
            check_weights(payload, tiny_shapes)
        assert message in str(refused.value), case
    good = {name: torch.zeros(shape) for name, shape in list(tiny_shapes.items())[:3]}
    assert check_weights(weights_payload(good), tiny_shapes) == 3


def test_adapters_are_checked_before_loading(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text('{"r": 8}')
    with pytest.raises(WeightsRefused, match=r"no adapter_model\.safetensors"):
        check_adapter(tmp_path, max_rank=8)
    tensors = tmp_path / "adapter_model.safetensors"
    tensors.write_bytes(save({"a.lora_A.weight": torch.tensor([[1.0, float("inf")]])}))
    with pytest.raises(WeightsRefused, match=r"'a\.lora_A\.weight': holds NaN or infinite"):
        check_adapter(tmp_path, max_rank=8)
    tensors.write_bytes(save({"a.lora_A.weight": torch.ones(2, 2, dtype=torch.int32)}))
    with pytest.raises(WeightsRefused, match="dtype I32 is not floating point"):
        check_adapter(tmp_path, max_rank=8)
    tensors.write_bytes(save({"a.lora_A.weight": torch.ones(2, 2)}))
    check_adapter(tmp_path, max_rank=8)
    with pytest.raises(WeightsRefused, match=r"r=8: must be an integer in \[1, 4\]"):
        check_adapter(tmp_path, max_rank=4)


# -- against the real server (vLLM's CPU build) ------------------------------------------------------------
def seeded_tokens(url: str) -> list[int]:
    body = {
        "messages": first_turn_messages(),
        "images": [encode_png(protocol_image(21))],
        "n": 1,
        "sampling": {"max_tokens": 16, "temperature": 1.0, "seed": 7},
    }
    reply = requests.post(url + "/v1/samples", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    return reply.json()["groups"][0]["completions"][0]["token_ids"]


def weights_version(url: str) -> int:
    reply = requests.get(url + "/readyz", timeout=60)
    assert reply.status_code == 200, reply.text
    return reply.json()["weights_version"]


def post_weights(url: str, payload: bytes) -> requests.Response:
    return requests.post(url + "/v1/weights", data=payload, headers=AUTH, timeout=300)


def test_refused_payloads_leave_the_served_weights_and_version(rollout_url: str, protocol_model_dir) -> None:
    shapes = served_weight_shapes(protocol_model_dir)
    before, version = seeded_tokens(rollout_url), weights_version(rollout_url)
    for case, (payload, message) in bad_payloads(shapes).items():
        reply = post_weights(rollout_url, payload)
        assert reply.status_code == 400, (case, reply.text)
        assert message in reply.json()["error"], case
    assert post_weights(rollout_url, b"").status_code == 400
    assert weights_version(rollout_url) == version
    assert seeded_tokens(rollout_url) == before


def test_a_load_that_fails_midway_is_rolled_back(rollout_url: str, protocol_model_dir) -> None:
    """Past every check, a fault injected after half the tensors (the server runs with test hooks): the
    layers loaded so far had new values, the others sat on the meta device; all get the old ones back."""
    original = load_file(protocol_model_dir / "model.safetensors")
    generator = torch.Generator().manual_seed(0)
    changed = {name: t + 0.5 * torch.randn(t.shape, generator=generator) for name, t in original.items()}
    before, version = seeded_tokens(rollout_url), weights_version(rollout_url)
    failing = weights_payload(changed, metadata={TEST_FAIL_AFTER_KEY: str(len(changed) // 2)})
    reply = post_weights(rollout_url, failing)
    assert reply.status_code == 400 and "test fault injected" in reply.json()["error"], reply.text
    assert weights_version(rollout_url) == version
    assert seeded_tokens(rollout_url) == before
    # The same weights without the fault load, change the sample, and the original ones bring it back.
    try:
        reply = post_weights(rollout_url, weights_payload(changed))
        assert reply.status_code == 200 and reply.json()["weights_version"] == version + 1
        assert seeded_tokens(rollout_url) != before
    finally:
        assert post_weights(rollout_url, weights_payload(original)).status_code == 200
    assert seeded_tokens(rollout_url) == before


def test_an_adapter_on_a_server_without_lora_is_a_400(rollout_url: str, tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text('{"r": 4}')
    body = {"name": "a", "path": str(tmp_path)}
    reply = requests.post(
        rollout_url + "/v1/adapters", json=body, headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert reply.status_code == 400 and "--enable-lora" in reply.json()["error"]

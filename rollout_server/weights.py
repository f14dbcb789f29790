"""Weight sync into a running vLLM engine, on any device vLLM runs on (its CPU build included), as a
transaction: a payload is checked whole before the model is touched, and a load that fails midway is rolled
back, so the previous weights keep serving either way.

`WeightSyncExtension` is mixed into vLLM's workers (`worker_extension_cls`), so the server reaches it with
`collective_rpc` by method name: no pickled functions cross the process boundary. The trainer sends its
state dict as safetensors bytes under Hugging Face parameter names, and the model's own `load_weights` maps
them onto vLLM's fused layers. It goes through the model runner's `reload_weights` (vLLM's layerwise
reload), which restores each layer's loading layout first and re-runs the post-load processing after:
vLLM's CPU build repacks linear weights after loading, so a plain `load_weights` into a running model
fails there. A layerwise reload that raises leaves the layers it had not finished on the meta device (the
next sample kills the engine, issue #14): hence the snapshot and rollback below.
"""

from __future__ import annotations

import json
import math
import os
import struct
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

# safetensors' dtype codes a weight may have: floating point only. An integer or boolean tensor is refused,
# not cast: under a parameter's name it is a bug in the sender.
FLOAT_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
}
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit
FINITE_CHECK_CHUNK = 2**24  # elements checked at once: bounds the temporary mask's memory

# Test-only fault injection (tests/rollout_server/test_weights_transactional.py): when a server is started
# with this variable set, a payload whose safetensors metadata holds TEST_FAIL_AFTER_KEY = "N" fails inside
# the load after N tensors, past every check, to prove the rollback. Ignored when the variable is unset.
TEST_HOOKS_ENV = "RFT_ROLLOUT_TEST_HOOKS"
TEST_FAIL_AFTER_KEY = "rft_test_fail_after_tensors"


class WeightsRefused(ValueError):
    """A weights payload the server refuses before touching the model (the caller's error, a 400)."""


def weights_payload(state_dict: Mapping[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """The trainer's state dict as the safetensors bytes `/v1/weights` and `update_weights` take."""
    from safetensors.torch import save

    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in state_dict.items()}
    return save(tensors, metadata=metadata)


# -- what the served model accepts -------------------------------------------------------------------------
def served_weight_shapes(model_dir: Path | str) -> dict[str, tuple[int, ...]]:
    """{name: shape} of every weight the served checkpoint accepts, under both namings vLLM loads: the
    checkpoint file's and the one transformers' `state_dict()` gives the trainer (they differ, e.g.
    `model.layers.0...` in a Qwen2.5-VL file, `model.language_model.layers.0...` in the trainer). Read from
    the files' headers and from the model built on the meta device: no weights are read."""
    shapes = _checkpoint_shapes(Path(model_dir))
    shapes.update(_transformers_shapes(Path(model_dir)))
    return shapes


def _checkpoint_shapes(model_dir: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(file), "pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                shapes[name] = tuple(handle.get_slice(name).get_shape())
    return shapes


def _transformers_shapes(model_dir: Path) -> dict[str, tuple[int, ...]]:
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


# -- checking a payload before it is applied ---------------------------------------------------------------
@dataclass(frozen=True)
class PayloadTensor:
    """One tensor as a safetensors header describes it; `start`, `end` are offsets into the payload."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


def payload_header(payload: bytes) -> tuple[list[PayloadTensor], dict[str, str]]:
    """The tensors and the metadata a safetensors payload declares, read from its header alone (the format:
    8 bytes little-endian header length, a JSON header, the data)."""
    if len(payload) < 8:
        raise WeightsRefused("the body is not safetensors (shorter than its 8-byte header length)")
    (header_length,) = struct.unpack("<Q", payload[:8])
    if header_length > min(MAX_HEADER_BYTES, len(payload) - 8):
        raise WeightsRefused(f"the body is not safetensors (a header of {header_length} bytes)")
    try:
        header = json.loads(payload[8 : 8 + header_length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeightsRefused("the body is not safetensors (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise WeightsRefused("the body is not safetensors (its header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    base = 8 + header_length
    return [_payload_tensor(name, entry, base) for name, entry in header.items()], metadata


def _payload_tensor(name: str, entry: object, base: int) -> PayloadTensor:
    try:
        dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]  # type: ignore[index]
        if not (isinstance(dtype, str) and all(type(size) is int and size >= 0 for size in shape)):
            raise TypeError
    except (KeyError, TypeError, ValueError):
        raise WeightsRefused(f"tensor '{name}': malformed safetensors header entry") from None
    return PayloadTensor(name, dtype, tuple(shape), base + int(start), base + int(end))


def check_weights(payload: bytes, shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Refuse (WeightsRefused, naming the first bad tensor) a payload that is empty, names a weight the
    served model does not have, has a shape other than the model's, is not floating point, does not match
    its own header, or holds a NaN or an infinity. Returns the number of tensors."""
    tensors, _ = payload_header(payload)
    if not tensors:
        raise WeightsRefused("the payload holds no tensors; send the state dict to load")
    for tensor in tensors:
        _check_tensor(tensor, payload, shapes)
    return len(tensors)


def _check_tensor(
    tensor: PayloadTensor, payload: bytes, shapes: Mapping[str, tuple[int, ...]] | None
) -> None:
    """`shapes` None: any name and shape (an adapter's, which vLLM checks against the model itself)."""
    name = tensor.name
    if shapes is not None and name not in shapes:
        raise WeightsRefused(f"tensor '{name}': the served model has no weight of this name")
    if shapes is not None and tensor.shape != shapes[name]:
        raise WeightsRefused(
            f"tensor '{name}': shape {list(tensor.shape)}, the model's is {list(shapes[name])}"
        )
    if tensor.dtype not in FLOAT_DTYPES:
        raise WeightsRefused(
            f"tensor '{name}': dtype {tensor.dtype} is not floating point (send {'/'.join(FLOAT_DTYPES)})"
        )
    dtype = FLOAT_DTYPES[tensor.dtype]
    numel = math.prod(tensor.shape)
    if (
        not (tensor.start <= tensor.end <= len(payload))
        or tensor.end - tensor.start != numel * dtype.itemsize
    ):
        raise WeightsRefused(f"tensor '{name}': its data offsets do not match its shape and dtype")
    if numel and not _all_finite(payload, tensor.start, numel, dtype):
        raise WeightsRefused(f"tensor '{name}': holds NaN or infinite values")


def _all_finite(payload: bytes, offset: int, numel: int, dtype: torch.dtype) -> bool:
    with warnings.catch_warnings():  # the bytes are read-only, and only read here
        warnings.simplefilter("ignore", UserWarning)
        values = torch.frombuffer(payload, dtype=dtype, count=numel, offset=offset)
    return all(
        bool(torch.isfinite(values[i : i + FINITE_CHECK_CHUNK]).all())
        for i in range(0, numel, FINITE_CHECK_CHUNK)
    )


def check_adapter(path: Path, max_rank: int) -> None:
    """Refuse (WeightsRefused) a PEFT adapter folder vLLM should not load: no readable `adapter_config.json`,
    a rank over the server's `--max-lora-rank`, no `adapter_model.safetensors` (a pickled `.bin` is not
    read), or a tensor that is not floating point or holds NaN or infinite values."""
    try:
        config = json.loads((path / "adapter_config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WeightsRefused(
            f"'{path}/adapter_config.json' is not readable JSON ({type(error).__name__})"
        ) from None
    rank = config.get("r") if isinstance(config, dict) else None
    if type(rank) is not int or not 1 <= rank <= max_rank:
        raise WeightsRefused(
            f"adapter rank r={rank!r}: must be an integer in [1, {max_rank}] (--max-lora-rank)"
        )
    tensors_file = path / "adapter_model.safetensors"
    if not tensors_file.is_file():
        raise WeightsRefused(f"'{path}' has no adapter_model.safetensors; save the adapter with safetensors")
    payload = tensors_file.read_bytes()
    tensors, _ = payload_header(payload)
    if not tensors:
        raise WeightsRefused(f"'{tensors_file}' holds no tensors")
    for tensor in tensors:
        _check_tensor(tensor, payload, None)


# -- applying it inside vLLM's worker ----------------------------------------------------------------------
class WeightSyncExtension:
    """Methods added to every vLLM worker (`self.model_runner` is the worker's)."""

    def load_safetensors_weights(self, payload: bytes) -> int:
        """Load a checked payload; if the load raises, put back the weights served before and re-raise."""
        from safetensors.torch import load

        tensors = load(payload)
        model = self.model_runner.get_model()
        snapshot = _snapshot(model)
        try:
            weights = _with_test_fault(iter(tensors.items()), _test_fail_after(payload))
            self.model_runner.reload_weights(weights_iterator=weights, is_checkpoint_format=True)
        except BaseException:
            _roll_back(model, snapshot)
            raise
        return len(tensors)


@dataclass
class Snapshot:
    """What a layer serves with: its tensors' values (on the CPU, so a rollback needs no second copy in
    accelerator memory; one model's worth of host memory while an update runs), and each module's plain
    attributes. The latter matter: post-load processing may keep the real weights outside any parameter
    (vLLM's CPU build packs a linear layer's weight into a closure, `layer.cpu_linear`, and empties
    `layer.weight`), and holding the old closure keeps the old packed weights."""

    tensors: dict[str, torch.Tensor]
    attributes: dict[str, dict[str, object]]


_MODULE_REGISTRIES = ("_parameters", "_buffers", "_modules")


def _snapshot(model: torch.nn.Module) -> Snapshot:
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    return Snapshot(
        tensors={name: tensor.detach().to("cpu", copy=True) for name, tensor in tensors.items()},
        attributes={name: _plain_attributes(module) for name, module in model.named_modules()},
    )


def _plain_attributes(module: torch.nn.Module) -> dict[str, object]:
    return {key: value for key, value in vars(module).items() if key not in _MODULE_REGISTRIES}


def _roll_back(model: torch.nn.Module, snapshot: Snapshot) -> None:
    """Undo a layerwise reload that stopped midway: every layer gets its serving tensors back (layers the
    reload had not finished still hold them; those it finished were overwritten in place), its plain
    attributes as they were, and the snapshot's values."""
    from vllm.model_executor.model_loader.reload.layerwise import (
        LAYERWISE_INFO,
        _get_original_loader,
        _place_kernel_tensors,
    )
    from vllm.model_executor.model_loader.reload.utils import get_layer_tensors

    for layer in model.modules():
        info = LAYERWISE_INFO.get(layer)
        if info is None or not info.can_load():
            continue
        if info.kernel_tensors is not None:
            _place_kernel_tensors(layer, info)
        for tensor in get_layer_tensors(layer).values():
            tensor.weight_loader = _get_original_loader(tensor)
        info.reset()
    for name, module in model.named_modules():
        saved = snapshot.attributes.get(name)
        if saved is None:
            continue
        for key in set(_plain_attributes(module)) - set(saved):
            delattr(module, key)
        vars(module).update(saved)
    current = dict(model.named_parameters())
    current.update(model.named_buffers())
    with torch.no_grad():
        for name, saved_tensor in snapshot.tensors.items():
            current[name].copy_(saved_tensor)


def _test_fail_after(payload: bytes) -> int | None:
    if not os.environ.get(TEST_HOOKS_ENV):
        return None
    _, metadata = payload_header(payload)
    value = metadata.get(TEST_FAIL_AFTER_KEY)
    return int(value) if value is not None else None


def _with_test_fault(
    weights: Iterator[tuple[str, torch.Tensor]], fail_after: int | None
) -> Iterable[tuple[str, torch.Tensor]]:
    for index, item in enumerate(weights):
        if fail_after is not None and index == fail_after:
            raise RuntimeError(f"test fault injected after {fail_after} tensors ({TEST_FAIL_AFTER_KEY})")
        yield item

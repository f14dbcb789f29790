"""The policy's full weights under Hugging Face names, for `update_weights` of the rollout server.

Every process must call `full_weights`: under DeepSpeed ZeRO-3 each parameter is gathered from its shards,
a collective operation (TRL's `DistributedBackend.gather_params`, the same helper TRL's own vLLM weight sync
uses). Only the process that pushes (`keep=True`, the main process) copies the tensors to the CPU.

With PEFT the adapter is merged into the base weights for the copy and unmerged afterwards, and the names are
the base model's (`base_model.model.` and `.base_layer` removed, LoRA tensors dropped), so the server loads
them like a checkpoint: it never needs to know an adapter exists.
"""

from __future__ import annotations

import contextlib

import torch
from accelerate.utils import is_peft_model

from rft.trainers.trl_adapter import DistributedBackend

PEFT_PREFIX = "base_model.model."
PEFT_SAVED_MODULE = "modules_to_save.default."


def full_weights(model: torch.nn.Module, dist: DistributedBackend, *, keep: bool) -> dict[str, torch.Tensor]:
    """{HF name: CPU tensor}; empty where `keep` is False. Each tensor is a private copy, so tied
    parameters (an LM head sharing the embeddings) do not share memory, which safetensors refuses."""
    if is_peft_model(model):
        return _merged_peft_weights(model, dist, keep=keep)
    weights: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        gathered = dist.gather_params([tensor]) if isinstance(tensor, torch.nn.Parameter) else _nothing()
        with gathered:
            if keep:
                weights[name] = tensor.detach().to("cpu", copy=True)
    return weights


def _merged_peft_weights(
    model: torch.nn.Module, dist: DistributedBackend, *, keep: bool
) -> dict[str, torch.Tensor]:
    # Merging a sharded adapter is not supported, so the whole model is gathered at once (as TRL does).
    with dist.gather_params(list(model.parameters())):
        model.merge_adapter()
        try:
            return {
                base_name(name): tensor.detach().to("cpu", copy=True)
                for name, tensor in model.state_dict().items()
                if keep and is_base_weight(name, model.prefix)
            }
        finally:
            model.unmerge_adapter()


def base_name(peft_name: str) -> str:
    """`base_model.model.x.q_proj.base_layer.weight` -> `x.q_proj.weight` (and a module saved whole by
    `modules_to_save` under its own name)."""
    name = peft_name.removeprefix(PEFT_PREFIX).replace(".base_layer", "")
    return name.replace(PEFT_SAVED_MODULE, "")


def is_base_weight(peft_name: str, adapter_prefix: str) -> bool:
    """False for the adapter's own tensors (merged already) and for the untouched original of a module saved
    by `modules_to_save` (its trained copy is sent instead)."""
    return adapter_prefix not in peft_name and "original_module" not in peft_name


@contextlib.contextmanager
def _nothing():
    yield

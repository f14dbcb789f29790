"""Weight sync into a running vLLM engine, on any device vLLM runs on (its CPU build included).

`WeightSyncExtension` is mixed into vLLM's workers (`worker_extension_cls`), so the server reaches it with
`collective_rpc` by method name: no pickled functions cross the process boundary. The trainer sends its
state dict as safetensors bytes under Hugging Face parameter names, and the model's own `load_weights` maps
them onto vLLM's fused layers. It goes through the model runner's `reload_weights` (vLLM's layerwise
reload), which restores each layer's loading layout first and re-runs the post-load processing after:
vLLM's CPU build repacks linear weights after loading, so a plain `load_weights` into a running model
fails there.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch


def weights_payload(state_dict: Mapping[str, torch.Tensor]) -> bytes:
    """The trainer's state dict as the safetensors bytes `/v1/weights` and `update_weights` take."""
    from safetensors.torch import save

    return save({name: tensor.detach().contiguous().cpu() for name, tensor in state_dict.items()})


class WeightSyncExtension:
    """Methods added to every vLLM worker (`self.model_runner` is the worker's)."""

    def load_safetensors_weights(self, payload: bytes) -> int:
        from safetensors.torch import load

        tensors = load(payload)
        self.model_runner.reload_weights(weights_iterator=iter(tensors.items()), is_checkpoint_format=True)
        return len(tensors)

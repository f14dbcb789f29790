"""Weight sync into a running vLLM engine, on any device vLLM runs on (its CPU build included).

`WeightSyncExtension` is mixed into vLLM's workers (`worker_extension_cls`), so the server reaches it with
`collective_rpc` by method name: no pickled functions cross the process boundary. The trainer sends its
state dict as safetensors bytes under Hugging Face parameter names, and the model's own `load_weights` maps
them onto vLLM's fused layers, exactly as when vLLM loads a checkpoint from disk.
"""

from __future__ import annotations


class WeightSyncExtension:
    """Methods added to every vLLM worker (`self.model_runner` is the worker's)."""

    def load_safetensors_weights(self, payload: bytes) -> int:
        from safetensors.torch import load

        tensors = load(payload)
        self.model_runner.model.load_weights(weights=tensors.items())
        return len(tensors)

"""The rollout server's episode code in the caller's process, with no HTTP: for evaluation and for a
single machine. `InProcessRollouts` answers like `RolloutClient` (`samples`, `episodes`, `update_weights`).

vLLM spawns its engine core, so a script that builds this must sit under `if __name__ == "__main__":`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch
from PIL import Image
from transformers import AutoProcessor

from rft.models.conversation import ConversationTokenizer
from rft.models.loading import detect_arch, install_chat_template
from rft.models.vllm_engine import on_cpu_host
from rft.rollout.episode import Episode
from rft.rollout.protocols import ToolRunner
from rft.rollout.sampling import SampleGroup, SampleResponse, Sampling, completion_out
from rft.tools.schemas import tool_schemas
from rollout_server.episodes import EpisodeRunner
from rollout_server.sampling import VLLMSampler
from rollout_server.weights import weights_payload

T = TypeVar("T")
# vLLM's share of GPU memory when it runs beside the trainer on the same GPU (TRL's colocate default); vLLM's
# own default, 0.9, would leave the trainer too little.
SHARED_GPU_MEMORY_SHARE = 0.3
# Seconds close() waits for vLLM's output handler to stop before shutting the engine down anyway.
CLOSE_TIMEOUT_S = 10


class InProcessRollouts:
    def __init__(
        self,
        model_dir: Path | str,
        *,
        tools: ToolRunner,
        max_model_len: int = 4096,
        max_tool_calls: int = 3,
        image_size: int = 224,
        seed: int = 0,
        gpu_memory_utilization: float | None = None,
        tool_names: Sequence[str] | None = None,
    ) -> None:
        arch = detect_arch(Path(model_dir))
        processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
        # The run's tool set (run.tools; None: all six) is what the prompt lists and what episodes may run.
        schemas = tool_schemas(tool_names)
        self.tokenizer = ConversationTokenizer(install_chat_template(processor, arch), arch, tools=schemas)
        self.sampler = VLLMSampler(
            model_dir,
            max_model_len=max_model_len,
            max_images_per_prompt=max_tool_calls + 1,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization
            or (None if on_cpu_host() else SHARED_GPU_MEMORY_SHARE),
        )
        self.runner = EpisodeRunner(
            self.sampler,
            self.tokenizer,
            tools,
            max_tool_calls=max_tool_calls,
            max_model_len=max_model_len,
            image_size=image_size,
        )
        self.weights_version = 0
        # One long-lived loop: vLLM's output handler task lives on the loop of the first request.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def samples(
        self, messages: list[dict], images: Sequence[Image.Image], *, n: int, sampling: Sampling | None = None
    ) -> SampleResponse:
        sampling = sampling or Sampling()
        results = self._run(
            self.runner.sample_each(
                messages, images, n=n, settings=sampling.settings(), adapter=sampling.adapter
            )
        )
        groups = [
            SampleGroup(
                prompt_ids=prompt,
                completions=[completion_out(c, self.tokenizer.decode(c.token_ids)) for c in completions],
            )
            for prompt, completions in results
        ]
        return SampleResponse(groups=groups, weights_version=self.weights_version)

    def episodes(
        self, images: Sequence[Image.Image], *, n: int, sampling: Sampling | None = None
    ) -> tuple[list[list[Episode]], int]:
        sampling = sampling or Sampling()
        groups = self._run(
            self.runner.episodes_each(images, n=n, settings=sampling.settings(), adapter=sampling.adapter)
        )
        return groups, self.weights_version

    def update_weights(self, state_dict: Mapping[str, torch.Tensor]) -> int:
        payload = weights_payload(state_dict)
        self._run(self.sampler.update_weights(payload))
        self.weights_version += 1
        return self.weights_version

    def close(self) -> None:
        stopping = asyncio.run_coroutine_threadsafe(self.sampler.stop_output_handler(), self._loop)
        try:
            stopping.result(timeout=CLOSE_TIMEOUT_S)
        except TimeoutError:  # a wedged loop must not keep the engine from shutting down
            stopping.cancel()
        self.sampler.shutdown()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

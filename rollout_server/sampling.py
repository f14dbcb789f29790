"""Sampling completions for token-id prompts with images: the one place that talks to vLLM's engine.

`VLLMSampler` wraps vLLM's `AsyncLLM` (the engine behind `vllm serve`), so many episodes can wait on it at
once and vLLM batches their turns together. Logprobs are vLLM's `processed_logprobs`: the log-probabilities
of the distribution each token was actually sampled from (after temperature), which is what GRPO's
importance ratio needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from rft.rollout.episode import Completion, SamplingSettings
from rft.rollout.sampling import SEED_LIMIT

# Below msgpack's 64-bit integers (vLLM's transport to its engine process) with room to spare.
MAX_INT_SETTING = 2**31 - 1


class UnknownAdapterError(ValueError):
    """A request names a LoRA adapter this server has not loaded."""


class EngineNotServing(RuntimeError):
    """The engine is alive by its own account but did not generate in time (wedged)."""


class Sampler(Protocol):
    async def sample(
        self,
        prompt_ids: Sequence[int],
        images: Sequence[Image.Image],
        *,
        n: int,
        settings: SamplingSettings,
        adapter: str | None = None,
    ) -> list[Completion]: ...


class VLLMSampler:
    """vLLM's async engine serving one local checkpoint (tiny or real), LoRA adapters optional."""

    def __init__(
        self,
        model_dir: Path | str,
        *,
        max_model_len: int = 4096,
        max_images_per_prompt: int = 8,
        seed: int = 0,
        enable_lora: bool = False,
        max_lora_rank: int = 16,
        gpu_memory_utilization: float | None = None,
        kv_cache_gib: float | None = None,
    ) -> None:
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        from rft.models.conversation import vision_token_ids
        from rft.models.vllm_engine import engine_kwargs
        from rollout_server.weights import served_weight_shapes

        kwargs = engine_kwargs(
            model_dir,
            max_model_len=max_model_len,
            max_images_per_prompt=max_images_per_prompt,
            seed=seed,
            enable_lora=enable_lora,
            max_lora_rank=max_lora_rank,
            gpu_memory_utilization=gpu_memory_utilization,
            kv_cache_gib=kv_cache_gib,
        )
        args = AsyncEngineArgs(
            **kwargs,
            logprobs_mode="processed_logprobs",
            worker_extension_cls="rollout_server.weights.WeightSyncExtension",
        )
        self.engine = AsyncLLM.from_engine_args(args)
        # A policy must never sample an image token (rft.models.conversation.VISION_TOKENS).
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.banned_logit_bias = {token: -100.0 for token in vision_token_ids(tokenizer)}
        self.max_model_len = max_model_len
        self.max_images_per_prompt = max_images_per_prompt
        self.enable_lora = enable_lora
        self.max_lora_rank = max_lora_rank
        self.model_dir = Path(model_dir)
        self._ids = itertools.count()
        self._lora_ids = itertools.count(1)
        self._adapters: dict[str, Any] = {}
        # What a weights payload may name, and each weight's shape (rollout_server.weights.check_weights).
        self.weight_shapes = served_weight_shapes(model_dir)
        self.last_served = 0.0  # time.monotonic() of the last generation that finished

    async def sample(
        self,
        prompt_ids: Sequence[int],
        images: Sequence[Image.Image],
        *,
        n: int,
        settings: SamplingSettings,
        adapter: str | None = None,
    ) -> list[Completion]:
        """n completions of one prompt. Whatever vLLM would refuse (settings of the wrong type or range, too
        many images, an adapter never loaded, a prompt longer than the context) is a ValueError, the
        caller's error, raised before the request reaches the engine where vLLM can tell."""
        from vllm.exceptions import VLLMClientError

        params = self._params(n, settings)
        lora_request = self._lora_request(adapter)
        if len(images) > self.max_images_per_prompt:
            raise ValueError(f"{len(images)} images in one prompt; the limit is {self.max_images_per_prompt}")
        prompt: dict[str, Any] = {"prompt_token_ids": list(prompt_ids)}
        if images:
            prompt["multi_modal_data"] = {"image": list(images)}
        final = None
        try:
            async for output in self.engine.generate(
                prompt, params, f"s{next(self._ids)}", lora_request=lora_request
            ):
                final = output
        except VLLMClientError as error:  # vLLM refuses the prompt itself (e.g. longer than the context)
            raise ValueError(str(error)) from error
        self.last_served = time.monotonic()
        if final is None:
            return []
        return [_completion(choice) for choice in final.outputs]

    async def check_serving(self, timeout_s: float) -> None:
        """Raise unless the engine serves: its own dead flag first, then one greedy token of a one-token
        prompt within `timeout_s` (a wedged engine that stopped reading requests passes the flag and fails
        here). Callers cache a success: rollout_server.service.RolloutService.check_ready."""
        from vllm import SamplingParams

        await self.engine.check_health()
        params = SamplingParams(n=1, max_tokens=1, temperature=0.0)

        async def one_token() -> None:
            async for _ in self.engine.generate({"prompt_token_ids": [0]}, params, f"ready{next(self._ids)}"):
                pass

        try:
            await asyncio.wait_for(one_token(), timeout_s)
        except TimeoutError:
            raise EngineNotServing(f"the engine produced no token within {timeout_s:g} s") from None
        self.last_served = time.monotonic()

    def _params(self, n: int, settings: SamplingSettings) -> Any:
        from vllm import SamplingParams
        from vllm.exceptions import VLLMClientError
        from vllm.sampling_params import RequestOutputKind

        check_settings(n, settings)
        try:
            return SamplingParams(
                n=n,
                max_tokens=settings.max_tokens,
                temperature=float(settings.temperature),
                top_p=float(settings.top_p),
                seed=settings.seed,
                ignore_eos=settings.ignore_eos,
                logprobs=0,
                logit_bias=self.banned_logit_bias or None,
                output_kind=RequestOutputKind.FINAL_ONLY,
            )
        except VLLMClientError as error:  # SamplingParams checks its own ranges (temperature in [0, 2], ...)
            raise ValueError(str(error)) from error

    def _lora_request(self, adapter: str | None) -> Any:
        """The loaded adapter named `adapter` (None: the base model). An unknown name is the caller's error:
        vLLM would sample the base model without a word."""
        if adapter is None:
            return None
        if adapter not in self._adapters:
            loaded = ", ".join(sorted(self._adapters)) or "none"
            raise UnknownAdapterError(
                f"sampling.adapter: no adapter named {adapter!r} is loaded (loaded: {loaded}); "
                "load it with POST /v1/adapters"
            )
        return self._adapters[adapter]

    async def add_adapter(self, name: str, path: Path) -> None:
        """Load (or replace) a PEFT LoRA adapter saved by the trainer; later requests may name it. The folder
        is checked first (rollout_server.weights.check_adapter) and the new version loaded beside the old
        one, which is dropped only once the new one is in: a refused or failed load leaves the adapter
        served before under `name` as it was."""
        from vllm.lora.request import LoRARequest

        from rollout_server.weights import WeightsRefused, check_adapter

        if not self.enable_lora:
            raise WeightsRefused("this server was started without --enable-lora; adapters cannot be loaded")
        await asyncio.to_thread(check_adapter, Path(path), self.max_lora_rank)
        # A fresh id each time: vLLM caches adapters by id, and a new version must not hit the old cache.
        request = LoRARequest(name, next(self._lora_ids), str(path))
        if not await self.engine.add_lora(request):
            raise WeightsRefused(f"vLLM did not load the adapter in '{path}'")
        previous = self._adapters.get(name)
        self._adapters[name] = request
        if previous is not None:
            await self.engine.remove_lora(previous.lora_int_id)

    async def update_weights(self, safetensors_bytes: bytes) -> int:
        """Load full weights (HF names) sent by the trainer into the running model; returns how many. The
        whole payload is checked first (WeightsRefused, a ValueError naming the first bad tensor), off the
        event loop; a load that fails past the checks is rolled back in the worker, so either way the
        previous weights keep serving (rollout_server.weights)."""
        from rollout_server.weights import check_weights

        await asyncio.to_thread(check_weights, safetensors_bytes, self.weight_shapes)
        counts = await self.engine.collective_rpc("load_safetensors_weights", args=(safetensors_bytes,))
        # Cached prefixes and image embeddings were computed by the old weights; an image seen again
        # after an update would otherwise reuse its stale embedding (and vLLM's CPU build crashes on it).
        await self.engine.reset_prefix_cache()
        await self.engine.reset_encoder_cache()
        return int(counts[0])

    async def stop_output_handler(self) -> None:
        """Cancel vLLM's output handler task (on this loop) and wait for it to end. AsyncLLM.shutdown cancels
        it only after the engine core has gone, so the handler first reads the core's exit as a failure and
        logs an EngineDeadError traceback at the end of a run that went well."""
        handler = getattr(self.engine, "output_handler", None)
        if handler is None or handler.done():
            return
        handler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handler

    def shutdown(self) -> None:
        self.engine.shutdown()
        # Dropped now, while the interpreter is whole: AsyncLLM.__del__ shuts down again, and at interpreter
        # exit it would find its module globals already gone and print a traceback.
        del self.engine


def _completion(choice: Any) -> Completion:
    logprobs = [step[token].logprob for step, token in zip(choice.logprobs, choice.token_ids, strict=True)]
    return Completion(list(choice.token_ids), logprobs, choice.finish_reason or "abort")


def check_settings(n: int, settings: SamplingSettings) -> None:
    """Refuse settings of the wrong type or out of range with a ValueError naming the setting. vLLM's
    engine process decodes each request against exact types: a bool where it expects an int killed the
    thread that reads requests, after which every request hung (issue #14)."""
    _check("n", n, int, 1, MAX_INT_SETTING)
    _check("max_tokens", settings.max_tokens, int, 1, MAX_INT_SETTING)
    _check("temperature", settings.temperature, float, 0.0, 2.0)
    _check("top_p", settings.top_p, float, 0.0, 1.0)
    _check("ignore_eos", settings.ignore_eos, bool, False, True)
    if settings.seed is not None:
        _check("seed", settings.seed, int, 0, SEED_LIMIT - 1)


def _check(name: str, value: Any, kind: type, low: Any, high: Any) -> None:
    # Exact types: a bool is an int to Python, not to vLLM; an int is a fine float.
    if not (type(value) is kind or (kind is float and type(value) is int)):
        raise ValueError(f"{name} must be {kind.__name__}, got {type(value).__name__}")
    if not low <= value <= high:  # NaN fails here too
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")

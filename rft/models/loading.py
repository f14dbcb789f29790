"""One loading path for tiny models the project builds and for real local checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, PreTrainedModel, ProcessorMixin

from rft.config import ConfigError
from rft.errors import RunSetupError
from rft.models.tiny import ensure_tiny_model
from rft.outputs import OutputDirError
from rft.prompts.chat_template import chat_template

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# config.json `model_type` -> the project's architecture name.
ARCH_BY_MODEL_TYPE = {"qwen2_5_vl": "qwen2_5_vl", "internvl": "internvl3"}


def detect_arch(model_dir: Path) -> str:
    """'qwen2_5_vl' or 'internvl3', read from the checkpoint's config.json."""
    model_type = json.loads((Path(model_dir) / "config.json").read_text()).get("model_type")
    if model_type not in ARCH_BY_MODEL_TYPE:
        raise ValueError(
            f"{model_dir}: model_type '{model_type}' is not supported; use a Qwen2.5-VL or an InternVL3 "
            "checkpoint in transformers format (InternVL3-8B-hf)"
        )
    return ARCH_BY_MODEL_TYPE[model_type]


def install_chat_template(processor: ProcessorMixin, arch: str) -> ProcessorMixin:
    """Make `processor` render with the project's template (tool calls, tool images, generation tags),
    whatever template the checkpoint shipped, so that trainer and rollout server tokenise identically."""
    template = chat_template(arch)
    processor.chat_template = template
    processor.tokenizer.chat_template = template
    return processor


def resolve_model_dir(
    *, path: Path | None, tiny_preset: str | None, arch: str, cache_dir: Path, image_size: int = 224
) -> Path:
    """The local directory to load: `path` as given, or the cached tiny model (built on first use)."""
    if path is not None:
        if not (Path(path) / "config.json").is_file():
            raise RunSetupError(
                f"model.path '{path}' is not a local checkpoint directory (no config.json); "
                "point it at a downloaded Qwen2.5-VL / InternVL3-hf folder"
            )
        return Path(path)
    if tiny_preset is None:
        raise ValueError("set model.path or model.tiny_preset")
    try:
        return ensure_tiny_model(cache_dir, arch, tiny_preset, image_size)
    except OutputDirError as error:
        raise ConfigError(f"model.cache_dir: {error}") from None


def load_policy(model_dir: Path, dtype: str = "float32") -> tuple[PreTrainedModel, ProcessorMixin]:
    """Model and processor from a local directory; never consults a hub."""
    processor = install_chat_template(
        AutoProcessor.from_pretrained(model_dir, local_files_only=True), detect_arch(model_dir)
    )
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=DTYPES[dtype], local_files_only=True)
    return model.eval(), processor

"""One loading path for tiny models the project builds and for real local checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, PreTrainedModel, ProcessorMixin

from rft.models.tiny import ensure_tiny_model

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_model_dir(
    *, path: Path | None, tiny_preset: str | None, arch: str, cache_dir: Path, image_size: int = 224
) -> Path:
    """The local directory to load: `path` as given, or the cached tiny model (built on first use)."""
    if path is not None:
        if not (Path(path) / "config.json").is_file():
            raise FileNotFoundError(
                f"model.path '{path}' is not a local checkpoint directory (no config.json); "
                "point it at a downloaded Qwen2.5-VL / InternVL3-hf folder"
            )
        return Path(path)
    if tiny_preset is None:
        raise ValueError("set model.path or model.tiny_preset")
    return ensure_tiny_model(cache_dir, arch, tiny_preset, image_size)


def load_policy(model_dir: Path, dtype: str = "float32") -> tuple[PreTrainedModel, ProcessorMixin]:
    """Model and processor from a local directory; never consults a hub."""
    processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=DTYPES[dtype], local_files_only=True)
    return model.eval(), processor

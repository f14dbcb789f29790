"""The steps every job shares: seeding, the process group, the protocol's data, the base model and the JSON
files a run writes. Heavy libraries are imported inside the steps, so that a job refuses a bad config
before it loads any of them."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rft.config import DataConfig, ModelConfig

if TYPE_CHECKING:
    from rft.data.protocols import ProtocolData


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def process_state() -> Any:
    """accelerate's PartialState of this process. cpu as in TrainingArguments(use_cpu): without it, processes
    started by torchrun on a machine without CUDA each see a single-process state, and main_process_first()
    guards nothing."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def protocol_data(data: DataConfig) -> ProtocolData:
    """The protocol's source, dev and target datasets; the synthetic benchmark is generated on first use."""
    from rft.data.prepare import prepare_protocol

    synth = data.synthetic
    return prepare_protocol(
        protocol=data.protocol,
        roots=data.roots,
        cache_dir=data.cache_dir,
        image_size=data.image_size,
        n_per_domain=synth.n_per_domain,
        seed=synth.seed,
        attack_strength=synth.attack_strength,
        workers=synth.workers,
    )


def base_model_dir(model: ModelConfig, image_size: int) -> Path:
    """The model section's checkpoint folder: model.path, or the cached tiny model (built on first use)."""
    from rft.models.loading import resolve_model_dir

    return resolve_model_dir(
        path=model.path,
        tiny_preset=model.tiny_preset,
        arch=model.arch,
        cache_dir=model.cache_dir,
        image_size=image_size,
    )


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2))

"""The steps every job shares: seeding, the process group, the protocol's data, the base model and the JSON
files a run writes. Heavy libraries are imported inside the steps, so that a job refuses a bad config
before it loads any of them."""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rft.config import ConfigError, DataConfig, ExperimentConfig, ModelConfig, load_config

if TYPE_CHECKING:
    from rft.data.protocols import ProtocolData


@dataclass(frozen=True)
class Request:
    """What a training command line asks for: the validated config, the resume request (None, "latest" or a
    checkpoint folder) and --overwrite."""

    config: ExperimentConfig
    resume: str | None
    overwrite: bool


def config_parser(doc: str, *, example: str) -> argparse.ArgumentParser:
    """--config and section.key=value overrides, the arguments every job launcher takes. `doc` (the
    launcher's docstring) is the help text: first paragraph, then the rest; `example` is an override to show."""
    head, _, tail = doc.partition("\n\n")
    parser = argparse.ArgumentParser(
        description=head, epilog=tail, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="a config name from configs/ or a YAML path")
    parser.add_argument("overrides", nargs="*", help=f"section.key=value overrides, e.g. {example}")
    return parser


def training_parser(doc: str, *, outputs: str, example: str) -> argparse.ArgumentParser:
    """The parser every training launcher shares: `config_parser`'s, with --resume / --resume-from /
    --overwrite; `outputs` names what --overwrite deletes."""
    parser = config_parser(doc, example=example)
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    resume.add_argument("--resume-from", metavar="CHECKPOINT", help="continue from this checkpoint folder")
    resume.add_argument("--overwrite", action="store_true", help=f"start afresh, deleting {outputs}")
    return parser


def request_from(args: argparse.Namespace, extra_overrides: tuple[str, ...] = ()) -> Request:
    """The parsed command line with its config loaded and validated (ConfigError otherwise)."""
    resume = "latest" if args.resume else args.resume_from
    return Request(load_config(args.config, [*args.overrides, *extra_overrides]), resume, args.overwrite)


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


def base_model_dir(model: ModelConfig | None, image_size: int) -> Path:
    """The model section's checkpoint folder: model.path, or the cached tiny model (built on first use)."""
    from rft.models.loading import resolve_model_dir

    if model is None:  # an InstructFLIP config: the VLM jobs have no policy to load
        raise ConfigError(
            "this job trains a VLM policy: add a model section (model.path or model.tiny_preset)"
        )

    return resolve_model_dir(
        path=model.path,
        tiny_preset=model.tiny_preset,
        arch=model.arch,
        cache_dir=model.cache_dir,
        image_size=image_size,
    )


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())

"""The InstructFLIP job behind launch/instructflip.py (paper 000): check the config and the run folder, prepare
the protocol's data, build the model from its component folders (or the tiny ones), train, export, and
evaluate every target domain into the common report. Writes under run.output_dir/run.name/instructflip/."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rft.baselines.instructflip.config import InstructFlipConfig
from rft.config import ConfigError, ExperimentConfig, save_resolved_config
from rft.jobs import steps
from rft.jobs.steps import Request, process_state, protocol_data, seed_everything, training_parser
from rft.outputs import write_json

STAGE = "instructflip"


def parser(doc: str) -> argparse.ArgumentParser:
    """The launcher's parser; `doc` (its docstring) is the help text."""
    return training_parser(doc, outputs="an earlier InstructFLIP run", example="instructflip.max_steps=50")


def request_from(args: argparse.Namespace) -> Request:
    """The parsed command line with its config loaded and validated (ConfigError otherwise); the config must
    have an instructflip section."""
    request = steps.request_from(args)
    if request.config.instructflip is None:
        raise ConfigError(
            f"{args.config}: no instructflip section; InstructFLIP configs have one (e.g. instructflip_cpu)"
        )
    return request


def stage_dir(config: ExperimentConfig) -> Path:
    return config.run_dir / STAGE


@dataclass(frozen=True)
class Plan:
    resume_from: str | None
    clear_earlier_run: bool


def check_run(config: ExperimentConfig, *, resume: str | None, overwrite: bool) -> Plan:
    """The component folders, --resume and an earlier run in the folder, settled before any data or model is
    loaded."""
    from rft.trainers.run_folders import check_fresh_start, resume_checkpoint

    settings, out = config.instructflip, stage_dir(config)
    if settings is not None and not settings.tiny:  # a wrong path fails here, not after the data is prepared
        check_dir(settings.clip_path, "clip_path")
        check_dir(settings.t5_path, "t5_path")
        if settings.qformer_path is not None:
            check_dir(settings.qformer_path, "qformer_path")
    return Plan(
        resume_checkpoint(resume, out / "checkpoints"),
        check_fresh_start(out, resume=resume, overwrite=overwrite),
    )


def run(config: ExperimentConfig, resume: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train, export to out/model and evaluate; returns the evaluation (also written to out/metrics.json)."""
    import torch

    from rft.baselines.instructflip.evaluate import evaluate_targets
    from rft.baselines.instructflip.train import export, train
    from rft.trainers.run_folders import remove_earlier_run

    settings, out = config.instructflip, stage_dir(config)
    assert settings is not None  # request_from refuses a config without the section
    plan = check_run(config, resume=resume, overwrite=overwrite)
    state = process_state()
    if state.num_processes > 1:
        raise ConfigError(
            f"InstructFLIP trains in one process, this launch started {state.num_processes}; run "
            "`python launch/instructflip.py ...` without accelerate launch / torchrun"
        )
    data = protocol_data(config.data)
    remove_earlier_run(out, remove=plan.clear_earlier_run, state=state)
    save_resolved_config(config, out)
    seed_everything(config.run.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = build(config)
    train(
        model,
        data.source,
        processor,
        config=settings,
        out=out,
        seed=config.run.seed,
        resume_from=plan.resume_from,
        device=device,
    )
    export(model, processor, out / "model")
    results = evaluate_targets(
        model,
        processor,
        targets=data.targets,
        dev=data.dev,
        out=out,
        batch_size=settings.eval_batch_size,
        device=device,
        max_samples=config.eval.max_samples,
        seed=config.run.seed,
    )
    write_json(out / "metrics.json", results)
    return results


def build(config: ExperimentConfig) -> tuple[Any, Any]:
    """The model from instructflip.clip_path / t5_path / qformer_path, or from the tiny components (built once
    under instructflip.cache_dir), and CLIP's image processor."""
    from transformers import CLIPImageProcessor

    from rft.baselines.instructflip.tiny import build_tiny_components

    s = config.instructflip
    assert s is not None
    if s.tiny:
        tiny = build_tiny_components(s.cache_dir)
        clip_dir, t5_dir = tiny / "clip", tiny / "t5"
    else:
        clip_dir, t5_dir = check_dir(s.clip_path, "clip_path"), check_dir(s.t5_path, "t5_path")
    try:
        model = components_model(s, clip_dir, t5_dir)
    except ValueError as error:  # components that do not fit together (widths, a Q-Former without text input)
        raise ConfigError(f"instructflip: {error}") from None
    return model, CLIPImageProcessor.from_pretrained(clip_dir, local_files_only=True)


def components_model(s: InstructFlipConfig, clip_dir: Path, t5_dir: Path) -> Any:
    """build_model with the section's Q-Former sizes and switches."""
    from rft.baselines.instructflip.model import Settings, build_model

    return build_model(
        clip_dir=clip_dir,
        t5_dir=t5_dir,
        qformer_dir=None if s.qformer_path is None else check_dir(s.qformer_path, "qformer_path"),
        qformer_hidden=s.qformer_hidden,
        qformer_layers=s.qformer_layers,
        qformer_heads=s.qformer_heads,
        settings=Settings(
            num_query_tokens=s.num_query_tokens,
            content_branch=s.content_branch,
            style_branch=s.style_branch,
            cue=s.cue,
            llm=s.llm,
            cue_size=s.cue_size,
            cue_beta=s.cue_beta,
            vision_frozen_layers=s.vision_frozen_layers,
        ),
    )


def check_dir(path: Path | None, key: str) -> Path:
    if path is None or not (Path(path) / "config.json").is_file():
        raise ConfigError(
            f"instructflip.{key}: {path} is not a local model folder (no config.json); give its path"
        )
    return Path(path)


def summary_lines(results: dict[str, Any]) -> list[str]:
    lines = []
    for domain, result in results.items():
        overall = result["classifier"]["overall"]
        auc = "n/a" if overall["auc"] is None else f"{overall['auc'] * 100:.2f}%"
        lines.append(f"[instructflip] target {domain}: HTER {overall['hter'] * 100:.2f}%  AUC {auc}")
    return lines

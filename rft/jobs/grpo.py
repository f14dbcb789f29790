"""The GRPO job behind launch/grpo.py: check everything a config can get wrong, prepare the protocol's data
and the starting policy, build the trainer (episode source, reward scorer, target-domain evaluation), train,
export the policy, and evaluate it on the target domains. Writes under run.output_dir/run.name/grpo/."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rft.config import ExperimentConfig, save_resolved_config
from rft.jobs import steps
from rft.jobs.connect import check_rollout_settings, episode_source
from rft.jobs.steps import (
    Request,
    base_model_dir,
    process_state,
    protocol_data,
    seed_everything,
    training_parser,
)
from rft.outputs import write_json
from rft.rollout.protocols import EpisodeSource

if TYPE_CHECKING:
    from rft.data.protocols import ProtocolData


@dataclass(frozen=True)
class RunPlan:
    """What the checks settled before anything is built."""

    gradient_accumulation_steps: int
    resume_from: str | None
    clear_earlier_run: bool
    stage_model: Path | None  # the SFT export grpo.init_from names; None: the model section's


def parser(doc: str) -> argparse.ArgumentParser:
    """The launcher's parser; `doc` (its docstring) is the help text."""
    return training_parser(doc, outputs="an earlier run's grpo/ outputs", example="grpo.max_steps=50")


def request_from(args: argparse.Namespace) -> Request:
    """The parsed command line with its config loaded and validated (ConfigError otherwise)."""
    return steps.request_from(args)


def grpo_dir(config: ExperimentConfig) -> Path:
    return config.run_dir / "grpo"


def run(
    config: ExperimentConfig,
    resume: str | None = None,
    source: EpisodeSource | None = None,
    overwrite: bool = False,
) -> dict:
    """Train, export, evaluate on the target domains; returns the final evaluation. `source` reuses an
    episode source the caller built (the demo's); otherwise one is built from the rollout section.
    `overwrite` deletes an earlier run's outputs first (a fresh start over them is refused otherwise)."""
    from rft.trainers.grpo_setup import training_arguments
    from rft.trainers.run_folders import remove_earlier_run

    out, state = grpo_dir(config), process_state()
    plan = check_run(config, resume=resume, overwrite=overwrite, state=state, check_rollout=source is None)
    remove_earlier_run(out, remove=plan.clear_earlier_run, state=state)
    splits, model_dir = prepare(config, stage_model=plan.stage_model, state=state)
    if state.is_main_process:
        save_resolved_config(config, out)
    seed_everything(config.run.seed)
    # The arguments come first: under a ZeRO-3 accelerate config they switch on partitioned loading.
    args = training_arguments(
        config.grpo,
        output_dir=out / "checkpoints",
        seed=config.run.seed,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
    )
    trainer, evaluation = build_trainer(
        config, args=args, model_dir=model_dir, splits=splits, source=source, state=state
    )
    try:
        trainer.train(resume_from_checkpoint=plan.resume_from)
        # Exported before the final evaluation, so that an evaluation that fails does not cost the model.
        export(trainer, model_dir=model_dir, out=out, dtype=config.model.dtype, is_main=state.is_main_process)
        return evaluate(trainer, evaluation, out=out, is_main=state.is_main_process)
    finally:
        # A source built here is closed here: an in-process engine left to the interpreter's exit logs
        # EngineDeadError after a successful run.
        if source is None:
            close_source(trainer.episode_source)


def close_source(source: EpisodeSource | None) -> None:
    """Shut down a source's engine or connections, when it has any (`close`)."""
    close = getattr(source, "close", None)
    if close is not None:
        close()


def check_run(
    config: ExperimentConfig, *, resume: str | None, overwrite: bool, state: Any, check_rollout: bool
) -> RunPlan:
    """Everything a config can get wrong, checked before data is generated or a model loaded: the method's
    coefficients, the batch arithmetic, --resume, an earlier run, the rollout token, the SFT stage."""
    from rft.trainers.grpo_recipes import accumulation_steps
    from rft.trainers.grpo_setup import reward_coefficients
    from rft.trainers.run_folders import check_fresh_start, policy_dir, resume_checkpoint

    grpo, out = config.grpo, grpo_dir(config)
    reward_coefficients(grpo.method, grpo.coefficients, config.run.tool_names)
    accumulation = accumulation_steps(
        generation_batch_size=grpo.generation_batch_size,
        per_device_train_batch_size=grpo.per_device_train_batch_size,
        gradient_accumulation_steps=grpo.gradient_accumulation_steps,
        num_processes=state.num_processes,
    )
    resume_from = resume_checkpoint(resume, out / "checkpoints")
    clear_earlier_run = check_fresh_start(out, resume=resume, overwrite=overwrite)
    if check_rollout and state.is_main_process:
        check_rollout_settings(config.rollout)
    stage_model = (
        None if grpo.init_from == "model" else policy_dir(init_from=grpo.init_from, run_dir=config.run_dir)
    )
    return RunPlan(accumulation, resume_from, clear_earlier_run, stage_model)


def prepare(config: ExperimentConfig, *, stage_model: Path | None, state: Any) -> tuple[ProtocolData, Path]:
    """The protocol's data and the starting policy's folder (the SFT stage's export, or the model section's
    checkpoint). One process generates or imports them, the others reuse its files."""
    with state.main_process_first():
        splits = protocol_data(config.data)
        model_dir = stage_model or base_model_dir(config.model, config.data.image_size)
    return splits, model_dir


def build_trainer(
    config: ExperimentConfig,
    *,
    args: Any,
    model_dir: Path,
    splits: ProtocolData,
    source: EpisodeSource | None,
    state: Any,
) -> tuple[Any, Any]:
    """The policy, its episode source (built on the main process when none is given), the reward scorer
    and the trainer, with the target-domain evaluation attached as a callback."""
    from reward_service import connect
    from rft.methods import method_named
    from rft.models.loading import load_policy
    from rft.trainers.grpo_eval import TargetEvaluation
    from rft.trainers.grpo_setup import balanced_examples, build_grpo_trainer, training_examples

    grpo, out = config.grpo, grpo_dir(config)
    model, processor = load_policy(model_dir, config.model.dtype)
    if source is None and state.is_main_process:
        source = episode_source(
            config.rollout,
            model_dir=model_dir,
            max_tool_calls=grpo.max_tool_calls,
            image_size=config.data.image_size,
            tools=connect(config.reward_service.url, token_env=config.reward_service.token_env),
            seed=config.run.seed,
            tool_episodes=method_named(grpo.method).uses_tools,
            tool_names=config.run.tool_names,
        )
    evaluation = TargetEvaluation(
        evaluate=target_evaluator(
            config, processor=processor, model_dir=model_dir, targets=splits.targets, samples_dir=out / "eval"
        ),
        every=config.eval.steps,
        out_dir=out / "eval",
    )
    examples = training_examples(splits.source)
    if grpo.balanced_classes:
        images_per_batch = grpo.generation_batch_size // grpo.num_generations
        examples = balanced_examples(examples, images_per_batch=images_per_batch, seed=config.run.seed)
    trainer = build_grpo_trainer(
        model=model,
        processor=processor,
        train_dataset=examples,
        grpo=grpo,
        args=args,
        source=source,
        reward_scorer=connect(config.reward_service.url, token_env=config.reward_service.token_env),
        seed=config.run.seed,
        tensorboard_dir=out / "tensorboard" if grpo.report_to == "tensorboard" else None,
        rollouts_dir=out / "rollouts" if grpo.record_rollouts else None,
        callbacks=[evaluation],
        tools=config.run.tool_names,
    )
    evaluation.attach(trainer)
    return trainer, evaluation


def target_evaluator(
    config: ExperimentConfig,
    *,
    processor: Any,
    model_dir: Path,
    targets: dict,
    samples_dir: Path | None = None,
) -> Callable[[Any], dict]:
    """`evaluate(trainer)`: the trainer's policy scored on every target domain (fast and final answers);
    with `samples_dir`, each result also keeps its per-sample rows and the images are written there."""
    from rft.models.loading import detect_arch

    arch = detect_arch(model_dir)

    def score_trainer_policy(trainer: Any) -> dict:
        return score_targets(
            config,
            model=trainer.model,
            processor=processor,
            arch=arch,
            targets=targets,
            source=trainer.episode_source,
            accelerator=trainer.accelerator,
            samples_dir=samples_dir,
        )

    return score_trainer_policy


def score_targets(
    config: ExperimentConfig,
    *,
    model: Any,
    processor: Any,
    arch: str,
    targets: dict,
    source: Any,
    accelerator: Any | None = None,
    samples_dir: Path | None = None,
) -> dict:
    """`model` scored on every target domain with the config's evaluation and episode settings; `source`
    must already serve its weights."""
    from rft.eval.target import evaluate_targets

    return evaluate_targets(
        model=model,
        processor=processor,
        arch=arch,
        targets=targets,
        method=config.grpo.method,
        episode_source=source,
        accelerator=accelerator,
        batch_size=config.eval.batch_size,
        max_samples=config.eval.max_samples,
        seed=config.run.seed,
        final_answer=config.eval.final_answer,
        max_completion_length=config.grpo.max_completion_length,
        tool_names=config.run.tool_names,
        samples_dir=samples_dir,
    )


def export(trainer: Any, *, model_dir: Path, out: Path, dtype: str, is_main: bool) -> None:
    """The trained policy as a plain Hugging Face folder (out/model), and the training log."""
    from rft.trainers.checkpoints import export_model

    export_model(trainer, base_model_dir=model_dir, out_dir=out / "model", dtype=dtype)
    if is_main:
        write_json(out / "train_log.json", trainer.state.log_history)


def evaluate(trainer: Any, evaluation: Any, *, out: Path, is_main: bool) -> dict:
    """The final target-domain evaluation, written to metrics.json (and logged with the training log)."""
    final = evaluation.run(trainer.state.global_step)
    if is_main:  # the log again, now with the final evaluation's entry
        write_json(out / "train_log.json", trainer.state.log_history)
        write_json(out / "metrics.json", final)
    return final


def report_lines(stage: str, results: dict) -> list[str]:
    """`[stage] target <domain> <answer>: HTER x%  AUC y%` for each target domain and scored answer."""
    lines = []
    for domain, result in results.items():
        for answer in ("fast", "final"):
            if answer in result:
                overall = result[answer]["overall"]
                lines.append(
                    f"[{stage}] target {domain} ({answer} answer): HTER {overall['hter'] * 100:.2f}%  "
                    f"AUC {overall['auc'] * 100:.2f}%"
                )
    return lines


def print_summary(config: ExperimentConfig, results: dict) -> None:
    """The final evaluation's lines and the output folder, printed by the main process only."""
    if process_state().is_main_process:
        print("\n".join(report_lines("after GRPO", results)))
        print(f"outputs: {grpo_dir(config)}")

"""InstructFLIP's training loop (paper 000 Sec. 3.5 and 4.1): Eq. 6 over the terms the configuration has,
AdamW with OneCycleLR (initial_lr -> peak_lr -> annealed), every loss term on its own TensorBoard curve and in
the JSON log, atomic resumable checkpoints (the trainable weights, optimizer, scheduler, RNG and step) and an
exact resume (the data order is a function of the seed and the epoch)."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from rft.baselines.instructflip.config import InstructFlipConfig
from rft.baselines.instructflip.data import epoch_batches, to_device
from rft.baselines.instructflip.losses import total_loss
from rft.baselines.instructflip.model import InstructFlip
from rft.outputs import write_json

STATE_FILE = "trainer_state.json"  # the name rft.trainers.run_folders.resume_checkpoint looks for


@dataclass
class TrainState:
    step: int = 0
    log_history: list[dict[str, float]] = field(default_factory=list)


def loss_weights(config: InstructFlipConfig) -> dict[str, float]:
    """Eq. 6's lambdas by term name."""
    return {
        "content": config.lambda_content,
        "style": config.lambda_style,
        "cls": config.lambda_cls,
        "cue": config.lambda_cue,
    }


def total_steps(config: InstructFlipConfig, n_rows: int) -> int:
    return config.max_steps or config.epochs * math.ceil(n_rows / config.batch_size)


def trainable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def build_optimizer(model: torch.nn.Module, config: InstructFlipConfig, steps: int) -> tuple[Any, Any]:
    """AdamW and OneCycleLR: from initial_lr up to peak_lr (the first 30% of the steps, PyTorch's default
    share), then cosine-annealed; div_factor = peak_lr / initial_lr sets the start."""
    optimizer = torch.optim.AdamW(
        trainable(model).values(), lr=config.peak_lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.peak_lr,
        total_steps=max(steps, 2),
        div_factor=config.peak_lr / config.initial_lr,
    )
    return optimizer, scheduler


def train(
    model: InstructFlip,
    dataset: Any,
    processor: Any,
    *,
    config: InstructFlipConfig,
    out: Path,
    seed: int,
    resume_from: str | None = None,
    device: torch.device | None = None,
) -> TrainState:
    """Train for `total_steps`; checkpoints under out/checkpoints, TensorBoard events under out/tensorboard,
    the log as out/train_log.json."""
    from torch.utils.tensorboard import SummaryWriter

    device = device or torch.device("cpu")
    model.to(device).train()
    steps = total_steps(config, len(dataset))
    optimizer, scheduler = build_optimizer(model, config, steps)
    state = load_checkpoint(Path(resume_from), model, optimizer, scheduler) if resume_from else TrainState()
    per_epoch = math.ceil(len(dataset) / config.batch_size)
    weights = loss_weights(config)
    with SummaryWriter(str(out / "tensorboard")) as writer:
        while state.step < steps:
            epoch, done = divmod(state.step, per_epoch)
            batches = epoch_batches(
                dataset,
                processor,
                batch_size=config.batch_size,
                seed=seed,
                epoch=epoch,
                skip=done,
                num_workers=config.num_workers,
            )
            for batch in batches:
                terms = model(**to_device(batch, device))
                loss = total_loss(terms, weights)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                state.step += 1
                if state.step % config.logging_steps == 0 or state.step == steps:
                    log_step(
                        state,
                        writer,
                        loss,
                        terms,
                        lr=scheduler.get_last_lr()[0],
                        epoch=state.step / per_epoch,
                    )
                if state.step % config.save_steps == 0 or state.step == steps:
                    save_checkpoint(
                        out / "checkpoints", state, model, optimizer, scheduler, config.save_total_limit
                    )
                if state.step >= steps:
                    break
    write_json(out / "train_log.json", state.log_history)
    return state


def log_step(
    state: TrainState,
    writer: Any,
    loss: torch.Tensor,
    terms: dict[str, torch.Tensor],
    *,
    lr: float,
    epoch: float,
) -> None:
    """Eq. 6's total and each of its terms, on its own curve (train/loss_<term>), plus the learning rate."""
    entry = {"step": state.step, "epoch": round(epoch, 4), "loss": float(loss.detach()), "learning_rate": lr}
    entry.update({f"loss_{name}": float(value.detach()) for name, value in terms.items()})
    for key, value in entry.items():
        if key != "step":
            writer.add_scalar(f"train/{key}", value, state.step)
    state.log_history.append(entry)


# ------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(
    checkpoints: Path, state: TrainState, model: torch.nn.Module, optimizer: Any, scheduler: Any, keep: int
) -> Path:
    """checkpoint-<step>/ written under a staging name and renamed when complete; the oldest beyond `keep`
    are removed."""
    final = checkpoints / f"checkpoint-{state.step}"
    staging = checkpoints / f".staging-checkpoint-{state.step}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in trainable(model).items()},
        staging / "trainable.safetensors",
    )
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, staging / "optimizer.pt"
    )
    torch.save({"torch": torch.get_rng_state(), "cuda": cuda_rng()}, staging / "rng.pt")
    (staging / STATE_FILE).write_text(
        json.dumps({"global_step": state.step, "log_history": state.log_history})
    )
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    for old in sorted(checkpoints.glob("checkpoint-*"), key=checkpoint_step)[:-keep]:
        shutil.rmtree(old)
    return final


def checkpoint_step(path: Path) -> int:
    return int(path.name.rsplit("-", 1)[1])


def cuda_rng() -> list[torch.Tensor] | None:
    return torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> TrainState:
    """Restore a checkpoint written by `save_checkpoint` into the freshly built model, optimizer and scheduler."""
    weights = load_file(path / "trainable.safetensors")
    expected = trainable(model)
    if set(weights) != set(expected):
        raise ValueError(
            f"{path} was saved from a different InstructFLIP configuration ({len(weights)} trainable tensors, "
            f"this one has {len(expected)}); resume with the run's own config.yaml"
        )
    with torch.no_grad():
        for name, value in weights.items():
            expected[name].copy_(value)
    saved = torch.load(path / "optimizer.pt", weights_only=True)  # no pickle from a checkpoint folder
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    rng = torch.load(path / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    saved_state = json.loads((path / STATE_FILE).read_text())
    return TrainState(step=saved_state["global_step"], log_history=saved_state["log_history"])


def export(model: InstructFlip, processor: Any, out_dir: Path) -> Path:
    """The trained model as component folders (InstructFlip.save_pretrained) with CLIP's image processor in
    vision/, written to a staging folder and renamed into place."""
    staging = out_dir.with_name(out_dir.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    processor.save_pretrained(staging / "vision")
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return out_dir

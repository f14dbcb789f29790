"""Training one expert (paper 003, Appendix A.3: "trained for 10 epochs using the Adam optimizer with a
learning rate of 0.001"), keeping the epoch that scores best on a held-out dev split."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from tqdm import tqdm

from rft.eval.metrics import auc
from rft.experts.data import ToolPictures
from rft.experts.model import ExpertArchitecture, ExpertCNN

PREDICT_BATCH = 256


class TrainingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(10, ge=1, le=1000, description="Passes over the training split (paper: 10).")
    batch_size: int = Field(32, ge=1, le=4096)
    learning_rate: float = Field(1e-3, gt=0, le=1, description="Adam's step size (paper: 0.001).")
    seed: int = 0
    threads: int = Field(2, ge=1, le=256, description="torch CPU threads while training.")


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Limit torch's intra-op threads for the duration (the machine's cores are shared)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def predict_probabilities(
    model: ExpertCNN, inputs: np.ndarray, batch_size: int = PREDICT_BATCH
) -> np.ndarray:
    """P(spoof trace) for each standardised picture of `inputs` (N, S, S)."""
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size]))[:, None]
            chunks.append(torch.sigmoid(model(batch)).numpy())
    return np.concatenate(chunks) if chunks else np.empty(0, np.float32)


def _balanced_loss(labels: np.ndarray) -> nn.BCEWithLogitsLoss:
    # Spoof images outnumber live ones (60:40 in the synthetic benchmark); weighting the positives by the
    # class ratio keeps the fixed 0.5 threshold of Appendix A.3's accuracy meaningful.
    positives = max(int(labels.sum()), 1)
    negatives = max(len(labels) - positives, 1)
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor(negatives / positives))


def _dev_auc(model: ExpertCNN, dev: ToolPictures | None) -> float | None:
    if dev is None or len(set(dev.labels.tolist())) < 2:
        return None
    return auc(predict_probabilities(model, dev.inputs), dev.labels)


def train_expert(
    train: ToolPictures,
    dev: ToolPictures | None,
    architecture: ExpertArchitecture,
    settings: TrainingSettings,
    *,
    description: str = "expert",
    progress: bool = True,
) -> tuple[ExpertCNN, list[dict]]:
    """Train an `ExpertCNN` on `train`; return the model of the epoch with the best dev AUC (the last epoch
    without a usable dev split) and the per-epoch history (mean loss, dev AUC)."""
    if len(train) == 0:
        raise ValueError("no training pictures")
    if train.inputs.shape[1:] != (architecture.input_size, architecture.input_size):
        raise ValueError(
            f"pictures are {train.inputs.shape[1:]}, the architecture expects {architecture.input_size}"
        )
    torch.manual_seed(settings.seed)
    order_rng = np.random.default_rng(settings.seed)
    model = ExpertCNN(architecture)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    loss_fn = _balanced_loss(train.labels)
    inputs = torch.from_numpy(train.inputs)[:, None]
    targets = torch.from_numpy(train.labels.astype(np.float32))
    history, best_state, best_auc = [], None, -1.0
    epochs = tqdm(range(1, settings.epochs + 1), desc=description, unit="epoch", disable=not progress)
    with torch_threads(settings.threads):
        for epoch in epochs:
            mean_loss = _one_epoch(model, optimizer, loss_fn, inputs, targets, settings.batch_size, order_rng)
            dev_auc = _dev_auc(model, dev)
            history.append({"epoch": epoch, "loss": round(mean_loss, 5), "dev_auc": dev_auc})
            epochs.set_postfix(loss=f"{mean_loss:.3f}", dev_auc="-" if dev_auc is None else f"{dev_auc:.3f}")
            if dev_auc is None or dev_auc > best_auc:
                best_auc, best_state = (dev_auc or -1.0), copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return model, history


def _one_epoch(model, optimizer, loss_fn, inputs, targets, batch_size, order_rng) -> float:
    model.train()
    order = torch.from_numpy(order_rng.permutation(len(targets)))
    total, seen = 0.0, 0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        if len(batch) < 2:  # BatchNorm needs two samples to estimate a variance
            continue
        loss = loss_fn(model(inputs[batch]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, seen = total + float(loss.detach()) * len(batch), seen + len(batch)
    return total / max(seen, 1)

"""Saving, loading and querying trained experts.

An experts folder holds, per tool, `<Tool>.pt` (the state dict, loaded with `weights_only=True`) and
`<Tool>.json` (architecture and training record), plus `report.json` from `rft experts train|evaluate`.
`ExpertBank` is what the annotation pipeline uses: p_k = E_k(T_k(I)) for any tool picture (paper 003, Eq. 6).
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rft.experts.inputs import EXPERT_TOOLS, check_expert_tool, expert_input
from rft.experts.model import ExpertArchitecture, ExpertCNN
from rft.experts.training import predict_probabilities, torch_threads
from rft.outputs import replaced_atomically, write_json

FORMAT_VERSION = 1


@dataclass
class Expert:
    """One trained expert: its tool, architecture, network (eval mode) and training record."""

    tool: str
    architecture: ExpertArchitecture
    model: ExpertCNN
    record: dict = field(default_factory=dict)
    digest: str = ""  # SHA-256 of the saved weights: which expert guided an annotation run

    def spoof_probability(self, picture: np.ndarray) -> float:
        """p_k for one RGB (or grey) uint8 tool picture of any size."""
        return float(self.spoof_probabilities([picture])[0])

    def spoof_probabilities(self, pictures: list[np.ndarray]) -> np.ndarray:
        inputs = np.stack([expert_input(picture, self.architecture.input_size) for picture in pictures])
        # One picture is a few MFLOPs: worker threads would only spin against the busy cores (a 64x64
        # conv took 75 ms with two threads on a loaded 2-core machine, under 1 ms with one).
        with torch_threads(1):
            return predict_probabilities(self.model, inputs)


def save_expert(folder: Path, expert: Expert) -> Path:
    """Write `<folder>/<tool>.pt` and `<tool>.json`; each file is replaced atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{expert.tool}.pt"
    with replaced_atomically(weights, "wb", durable=True) as handle:
        torch.save(expert.model.state_dict(), handle)
    write_json(
        folder / f"{expert.tool}.json",
        {
            "format_version": FORMAT_VERSION,
            "tool": expert.tool,
            "architecture": expert.architecture.model_dump(mode="json"),
            "record": expert.record,
        },
        durable=True,
    )
    return weights


def load_expert(folder: Path, tool: str) -> Expert:
    """The expert of `tool` saved in `folder`; one-line errors for a missing or damaged file."""
    check_expert_tool(tool)
    folder = Path(folder)
    meta_path, weights_path = folder / f"{tool}.json", folder / f"{tool}.pt"
    for path in (meta_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"expert file not found: {path}")
    try:
        meta = json.loads(meta_path.read_text())
        architecture = ExpertArchitecture.model_validate(meta["architecture"])
        model = ExpertCNN(architecture)
        weights = weights_path.read_bytes()
        model.load_state_dict(torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True))
    except (ValueError, KeyError, RuntimeError, OSError, EOFError, pickle.UnpicklingError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"cannot load the {tool} expert from {folder}: {first_line}") from None
    model.eval()
    digest = hashlib.sha256(weights).hexdigest()
    return Expert(
        tool=tool, architecture=architecture, model=model, record=meta.get("record", {}), digest=digest
    )


class ExpertBank:
    """The experts saved in a folder, by tool. Tools without an expert (ZoomInTool, or one not trained)
    give None, and the annotation guidance then carries no expert sentence."""

    def __init__(self, experts: dict[str, Expert]) -> None:
        self.experts = dict(experts)

    @classmethod
    def load(cls, folder: Path, tools: tuple[str, ...] | None = None) -> ExpertBank:
        """Every expert present in `folder` (or exactly `tools`, each of which must be present)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"experts folder not found: {folder}")
        wanted = tools or tuple(tool for tool in EXPERT_TOOLS if (folder / f"{tool}.pt").is_file())
        if not wanted:
            raise FileNotFoundError(f"no expert in {folder}; train them with `rft experts train`")
        return cls({tool: load_expert(folder, tool) for tool in wanted})

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(self.experts)

    def spoof_probability(self, tool: str, picture: np.ndarray) -> float | None:
        expert = self.experts.get(tool)
        return None if expert is None else expert.spoof_probability(picture)

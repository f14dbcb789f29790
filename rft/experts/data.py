"""Tool pictures of a benchmark split, ready for an expert: computed once, cached as .npz.

Paper 003, Appendix A.3 trains each expert on tool outputs of CelebA-Spoof with identities split 4:1 between
training and testing. Any dataset in the shared schema (rft.data.schema) works here; its `split` column plays
that role (the synthetic benchmark's train / dev / test splits have disjoint subjects).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rft.experts.inputs import check_expert_tool, expert_input, random_arguments, tool_picture
from rft.outputs import replaced_atomically

CACHE_VERSION = 1


@dataclass(frozen=True)
class ToolPictures:
    """One split's expert inputs and what is known about each image; arrays share their first axis."""

    inputs: np.ndarray  # (N, S, S) float32, standardised
    labels: np.ndarray  # (N,) int64, 1 = spoof
    spoof_types: np.ndarray  # (N,) str
    domains: np.ndarray  # (N,) str
    subjects: np.ndarray  # (N,) str ('' when unknown)
    sample_ids: np.ndarray  # (N,) str

    def __len__(self) -> int:
        return len(self.labels)


def load_benchmark(dataset_dir: Path):
    """The dataset at `dataset_dir` (rft.data.schema layout); one-line errors for a missing or foreign folder."""
    from rft.data.schema import load_dataset_dir

    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {dataset_dir}")
    try:
        dataset = load_dataset_dir(dataset_dir)
    except (FileNotFoundError, ValueError, OSError) as error:
        raise ValueError(f"{dataset_dir} is not a saved dataset ({error})") from None
    missing = {"id", "image", "label", "spoof_type", "domain", "split"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"{dataset_dir} lacks the column(s) {', '.join(sorted(missing))} of rft.data.schema")
    return dataset


def split_indices(dataset, split: str, domains: tuple[str, ...] | None = None) -> list[int]:
    """Row indices of `split` (restricted to `domains` when given); ValueError naming the splits that exist."""
    splits, row_domains = dataset["split"], dataset["domain"]
    rows = [i for i, (s, d) in enumerate(zip(splits, row_domains, strict=True)) if s == split]
    if domains:
        rows = [i for i in rows if row_domains[i] in domains]
    if not rows:
        known = ", ".join(sorted(set(splits)))
        where = f" in domains {', '.join(domains)}" if domains else ""
        raise ValueError(f"no images in split {split!r}{where}; the dataset has splits: {known}")
    return rows


def arguments_for(tool: str, sample_id: str, argument_mix: float, seed: int) -> dict:
    """Default arguments, or with probability `argument_mix` random ones; a pure function of the sample id."""
    rng = np.random.default_rng([seed, zlib.crc32(sample_id.encode())])
    return random_arguments(tool, rng) if rng.random() < argument_mix else {}


def _cache_path(cache_dir: Path, dataset, key: dict) -> Path:
    digest = hashlib.sha256(
        json.dumps({**key, "fingerprint": dataset._fingerprint, "v": CACHE_VERSION}, sort_keys=True).encode()
    ).hexdigest()[:20]
    return Path(cache_dir) / f"{key['tool']}-{key['split']}-{digest}.npz"


def _row(dataset, index: int) -> dict:
    """Row `index`, its image decoded; a corrupt image is a one-line ValueError naming the sample."""
    try:
        return dataset[index]
    except (OSError, ValueError) as error:
        sample_id = dataset.select_columns(["id"])[index]["id"]
        raise ValueError(f"sample {sample_id}: cannot read its image ({error})") from None


def _compute(
    dataset, rows: list[int], tool: str, input_size: int, argument_mix: float, seed: int, progress: bool
):
    inputs = np.empty((len(rows), input_size, input_size), np.float32)
    columns = {name: [] for name in ("labels", "spoof_types", "domains", "subjects", "sample_ids")}
    has_subjects = "subject_id" in dataset.column_names
    for position, index in enumerate(tqdm(rows, desc=f"{tool} pictures", unit="img", disable=not progress)):
        row = _row(dataset, index)
        arguments = arguments_for(tool, row["id"], argument_mix, seed)
        inputs[position] = expert_input(tool_picture(tool, row["image"], arguments), input_size)
        columns["labels"].append(int(row["label"]))
        columns["spoof_types"].append(row["spoof_type"])
        columns["domains"].append(row["domain"])
        columns["subjects"].append((row["subject_id"] or "") if has_subjects else "")
        columns["sample_ids"].append(row["id"])
    return ToolPictures(inputs=inputs, **{name: np.asarray(values) for name, values in columns.items()})


def tool_pictures(
    dataset,
    tool: str,
    split: str,
    input_size: int,
    *,
    domains: tuple[str, ...] | None = None,
    argument_mix: float = 0.0,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> ToolPictures:
    """The expert inputs of every image of `split`: tool picture -> grey, resized, standardised.

    With `cache_dir`, the result is stored there as .npz under a name derived from the dataset's fingerprint
    and every argument, and later calls load it instead of running the tool again.
    """
    check_expert_tool(tool)
    if not 0.0 <= argument_mix <= 1.0:
        raise ValueError(f"argument_mix must be in [0, 1], got {argument_mix}")
    rows = split_indices(dataset, split, domains)
    key = {
        "tool": tool,
        "split": split,
        "domains": sorted(domains or []),
        "input_size": input_size,
        "argument_mix": argument_mix,
        "seed": seed,
    }
    path = _cache_path(cache_dir, dataset, key) if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as stored:
            return ToolPictures(**{name: stored[name] for name in ToolPictures.__dataclass_fields__})
    pictures = _compute(dataset, rows, tool, input_size, argument_mix, seed, progress)
    if path is not None:
        _save_atomically(path, pictures)
    return pictures


def _save_atomically(path: Path, pictures: ToolPictures) -> None:
    with replaced_atomically(path, "wb") as handle:
        np.savez(handle, **{name: getattr(pictures, name) for name in ToolPictures.__dataclass_fields__})

"""Cross-domain protocols: which data trains, which validates, and which targets are evaluated separately.

A protocol is a YAML file under `rft/configs/protocols/` (`configs/protocols/` in a checkout):

    name: cefa_to_hqwmca
    paper: "001"
    description: "..."
    source: [{dataset: cefa, splits: [train]}]      # training data: one or more selections
    dev: [{dataset: cefa, splits: [dev]}]           # optional
    target: [{dataset: hqwmca}]                     # each entry evaluated and reported separately

A selection may filter by `splits`, `domains` and `attack_types` (spoof types such as `print_a4`, or the
coarse categories live / print / replay / mask / makeup / partial / other). `materialize` turns a protocol
into datasets: a root that holds a saved dataset is loaded as is, any other root is imported once into
`cache_dir/<dataset>` with that dataset's importer.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import datasets
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rft.config import CONFIG_DIR, ConfigError, describe_validation_error, load_yaml_file, resolve_config_path
from rft.data.importers import (
    SUMMARY_FILE,
    DatasetImportError,
    ImportOptions,
    ImportSummary,
    import_dataset,
)
from rft.data.schema import ATTACK_CATEGORY, load_dataset_dir
from rft.outputs import OutputDirError

PROTOCOL_DIR = CONFIG_DIR / "protocols"
# Datasets that are generated, not imported: a root given for them must hold a saved dataset.
GENERATED_DATASETS = {"synthetic": "rft synth"}
ATTACK_NAMES = sorted({t.value for t in ATTACK_CATEGORY} | set(ATTACK_CATEGORY.values()))
FILTER_COLUMNS = ["split", "domain", "spoof_type", "attack_category"]


class Selection(BaseModel):
    """Part of one dataset: the samples whose split, domain and attack type pass every given filter."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(..., min_length=1)
    name: str | None = Field(None, description="Name of a target in reports (default: the dataset).")
    splits: list[str] | None = None
    domains: list[str] | None = None
    attack_types: list[str] | None = None

    @field_validator("attack_types")
    @classmethod
    def _known_attack_types(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or []) - set(ATTACK_NAMES))
        if unknown:
            raise ValueError(f"unknown attack type(s) {', '.join(unknown)}; known: {', '.join(ATTACK_NAMES)}")
        return value

    @property
    def label(self) -> str:
        return self.name or self.dataset

    def describe(self) -> str:
        return yaml.safe_dump(
            self.model_dump(exclude_none=True), default_flow_style=True, sort_keys=False
        ).strip()

    def accepts(self, split: str, domain: str, spoof_type: str, category: str) -> bool:
        return (
            (self.splits is None or split in self.splits)
            and (self.domains is None or domain in self.domains)
            and (
                self.attack_types is None or spoof_type in self.attack_types or category in self.attack_types
            )
        )

    def keeps(
        self, splits: list[str], domains: list[str], spoof_types: list[str], categories: list[str]
    ) -> list[bool]:
        """Batched filter over the dataset's columns (no image is decoded)."""
        return list(map(self.accepts, splits, domains, spoof_types, categories))


class Protocol(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1)
    paper: str | None = Field(None, description="Seed paper number, e.g. '001'.")
    description: str = ""
    source: list[Selection] = Field(..., min_length=1)
    dev: list[Selection] | None = None
    target: list[Selection] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _distinct_target_names(self) -> Protocol:
        labels = [selection.label for selection in self.target]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"several targets are named {', '.join(repeated)}; give each a distinct `name:`")
        return self

    @property
    def datasets(self) -> list[str]:
        """Every dataset the protocol reads, in order of first mention."""
        selections = [*self.source, *(self.dev or []), *self.target]
        return list(dict.fromkeys(selection.dataset for selection in selections))


@dataclass(frozen=True)
class ProtocolData:
    protocol: Protocol
    source: datasets.Dataset
    dev: datasets.Dataset | None
    targets: dict[str, datasets.Dataset]  # in the protocol's order
    roots: dict[str, Path]  # the folder each dataset was read from


def load_protocol(name_or_path: str | Path) -> Protocol:
    """A YAML path, or a bare name (`cefa_to_hqwmca`) from rft/configs/protocols/. Raises ConfigError."""
    path = resolve_config_path(name_or_path, PROTOCOL_DIR)
    raw = load_yaml_file(path)
    try:
        return Protocol.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{path}: {describe_validation_error(error, Protocol)}") from None


def root_problem(protocol: Protocol, dataset: str, roots: dict[str, Path]) -> str | None:
    if dataset not in roots:
        close = difflib.get_close_matches(dataset, list(roots), n=1)
        hint = f" (data.roots has '{close[0]}': a typo?)" if close else ""
        return (
            f"protocol '{protocol.name}' needs dataset '{dataset}': "
            f"set data.roots.{dataset} to its local folder{hint}"
        )
    if not Path(roots[dataset]).is_dir():
        return f"data.roots.{dataset} = {roots[dataset]} is not a folder: point it at your copy of {dataset}"
    return None


def check_roots(protocol: Protocol, roots: dict[str, Path]) -> None:
    """Raise ConfigError naming every dataset whose root is not configured or not a folder."""
    problems = [
        problem for dataset in protocol.datasets if (problem := root_problem(protocol, dataset, roots))
    ]
    if problems:
        raise ConfigError("; ".join(problems))


def is_saved_dataset(folder: Path) -> bool:
    """A folder written by `save_dataset` (Dataset.save_to_disk)."""
    return (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()


def cache_is_current(out: Path, root: Path, options: ImportOptions) -> bool:
    """An earlier import of the same root with the same options (the summary records both)."""
    summary_file = out / SUMMARY_FILE
    if not (is_saved_dataset(out) and summary_file.is_file()):
        return False
    try:
        summary = ImportSummary.model_validate_json(summary_file.read_text())
    except ValidationError:  # written by another version of the importer: import again
        return False
    return summary.root == str(root.resolve()) and summary.options == options and summary.samples > 0


def load_or_import(dataset: str, root: Path, cache_dir: Path, image_size: int) -> datasets.Dataset:
    if is_saved_dataset(root):
        return load_dataset_dir(root)
    if dataset in GENERATED_DATASETS:
        raise ConfigError(
            f"data.roots.{dataset} = {root} holds no saved dataset; generate one there with "
            f"`{GENERATED_DATASETS[dataset]}`, or leave data.roots.{dataset} unset to have it generated"
        )
    out, options = cache_dir / dataset, ImportOptions(image_size=image_size)
    if not cache_is_current(out, root, options):
        try:
            import_dataset(dataset, root, out, options)
        except DatasetImportError as error:
            raise ConfigError(f"data.roots.{dataset}: {error}") from None
        except OutputDirError as error:
            raise ConfigError(f"data.cache_dir: {error}") from None
    return load_dataset_dir(out)


def present_values(dataset: datasets.Dataset, column: str) -> str:
    return ", ".join(sorted({str(value) for value in dataset.select_columns([column])[column]})) or "none"


def select(protocol: Protocol, selection: Selection, dataset: datasets.Dataset) -> datasets.Dataset:
    subset = dataset.filter(selection.keeps, input_columns=FILTER_COLUMNS, batched=True, keep_in_memory=True)
    if len(subset) == 0:
        raise ConfigError(
            f"protocol '{protocol.name}': selection {selection.describe()} matches no sample of "
            f"'{selection.dataset}' (splits there: {present_values(dataset, 'split')}; "
            f"domains: {present_values(dataset, 'domain')})"
        )
    return subset


def combine(
    protocol: Protocol, selections: list[Selection], loaded: dict[str, datasets.Dataset]
) -> datasets.Dataset:
    parts = [select(protocol, selection, loaded[selection.dataset]) for selection in selections]
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def materialize(
    protocol: Protocol, roots: dict[str, Path], cache_dir: Path, image_size: int = 224
) -> ProtocolData:
    """The protocol's source, dev and target datasets. A root holding a saved dataset is loaded directly;
    any other root is imported into `cache_dir/<dataset>` (reused while root and options are unchanged)."""
    check_roots(protocol, roots)
    loaded = {
        name: load_or_import(name, Path(roots[name]), Path(cache_dir), image_size)
        for name in protocol.datasets
    }
    return ProtocolData(
        protocol=protocol,
        source=combine(protocol, protocol.source, loaded),
        dev=combine(protocol, protocol.dev, loaded) if protocol.dev else None,
        targets={
            selection.label: select(protocol, selection, loaded[selection.dataset])
            for selection in protocol.target
        },
        roots={name: Path(roots[name]) for name in protocol.datasets},
    )


__all__ = [
    "PROTOCOL_DIR",
    "Protocol",
    "ProtocolData",
    "Selection",
    "check_roots",
    "load_protocol",
    "materialize",
]

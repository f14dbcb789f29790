"""Importers of the public face anti-spoofing datasets: released layout in, face-cropped `Sample`s out.

    from rft.data.importers import import_dataset
    summary = import_dataset("oulu_npu", root=Path("/data/OULU-NPU"), out=Path(".cache/data/oulu_npu"))

Each module reads one dataset family into a `Scan`; `common.run_import` does the shared work (frame sampling,
face cropping, writing the dataset and `import_summary.json`). A dataset name without an importer of its own
is read with the generic `real/` + `fake/` folder importer.
"""

from __future__ import annotations

from pathlib import Path

from rft.data.importers.casia_fasd import scan_casia_fasd
from rft.data.importers.casia_surf import scan_casia_surf, scan_cefa
from rft.data.importers.celeba_spoof import scan_celeba_spoof
from rft.data.importers.common import (
    SUMMARY_FILE,
    DatasetImportError,
    ImportIssue,
    ImportOptions,
    ImportSummary,
    Scan,
    Scanner,
    SourceItem,
    run_import,
)
from rft.data.importers.folder import scan_folder
from rft.data.importers.msu_mfsd import scan_msu_mfsd
from rft.data.importers.oulu_npu import scan_oulu_npu
from rft.data.importers.replay_attack import scan_replay_attack
from rft.data.importers.siw_mv2 import scan_siw_mv2
from rft.data.importers.wmca import scan_wmca

IMPORTERS: dict[str, Scanner] = {
    "celeba_spoof": scan_celeba_spoof,
    "oulu_npu": scan_oulu_npu,
    "casia_fasd": scan_casia_fasd,
    "replay_attack": scan_replay_attack,
    "msu_mfsd": scan_msu_mfsd,
    "casia_surf": scan_casia_surf,
    "cefa": scan_cefa,
    "siw_mv2": scan_siw_mv2,
    "hqwmca": scan_wmca,
    "wmca": scan_wmca,
    "folder": scan_folder,
}

# Targets of the one-to-eleven protocol (paper 003) without an importer here: read with `scan_folder`.
FOLDER_DATASETS = ("siw", "rose_youtu", "hkbu_mars_v1plus", "casia_surf_3dmask", "hifimask")


def scanner_for(dataset: str) -> Scanner:
    return IMPORTERS.get(dataset, scan_folder)


def import_dataset(
    dataset: str, root: Path, out: Path, options: ImportOptions | None = None, progress: bool = True
) -> ImportSummary:
    """Import `root` (the dataset's released layout) into a saved dataset at `out`; see `run_import`."""
    return run_import(
        dataset, scanner_for(dataset), Path(root), Path(out), options or ImportOptions(), progress
    )


__all__ = [
    "FOLDER_DATASETS",
    "IMPORTERS",
    "SUMMARY_FILE",
    "DatasetImportError",
    "ImportIssue",
    "ImportOptions",
    "ImportSummary",
    "Scan",
    "SourceItem",
    "import_dataset",
    "scanner_for",
]

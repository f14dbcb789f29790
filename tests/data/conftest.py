"""Fixtures of the importer tests: tiny stand-ins for the released datasets (images and videos of a real face,
skimage's astronaut, small enough to be fast and large enough for the Haar cascade; faceless frames; corrupt
files; annotation files) and a quiet import that returns what the tests look at."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from rft.data.importers import ImportIssue, ImportOptions, ImportSummary, import_dataset
from rft.data.schema import load_dataset_dir

SIZE = 128
FOURCC = {".avi": "MJPG", ".mov": "mp4v", ".mp4": "mp4v"}


@functools.cache
def face_image(size: int = SIZE) -> np.ndarray:
    """RGB astronaut, her head and shoulders: a face large enough to survive video compression at 128 px."""
    head = skimage.data.astronaut()[0:320, 64:384]
    return cv2.resize(head, (size, size), interpolation=cv2.INTER_AREA)


def blank_image(size: int = SIZE) -> np.ndarray:
    """A flat grey frame: no face to detect."""
    return np.full((size, size, 3), 128, np.uint8)


class Media:
    """Writes the files of a fixture tree, creating parent folders."""

    face = staticmethod(face_image)
    blank = staticmethod(blank_image)

    def image(self, path: Path, rgb: np.ndarray | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), cv2.cvtColor(face_image() if rgb is None else rgb, cv2.COLOR_RGB2BGR))
        return path

    def video(self, path: Path, n_frames: int = 6, rgb: np.ndarray | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = cv2.cvtColor(face_image() if rgb is None else rgb, cv2.COLOR_RGB2BGR)
        writer = cv2.VideoWriter(
            str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), 10, frame.shape[1::-1]
        )
        assert writer.isOpened(), f"cannot write test video {path}"
        for _ in range(n_frames):
            writer.write(frame)
        writer.release()
        return path

    def frames(self, folder: Path, n_frames: int = 4) -> Path:
        for index in range(1, n_frames + 1):
            self.image(folder / f"{index}.png")
        return folder

    def corrupt(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"this is not an image or a video")
        return path

    def lines(self, path: Path, lines: list[str]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        return path


@dataclass
class ImportResult:
    summary: ImportSummary
    rows: list[dict]  # the dataset's rows without their images

    def issue(self, file_end: str, line: int | None = None) -> ImportIssue:
        """The one issue recorded for the file ending in `file_end` (at `line`, when given)."""
        found = [i for i in self.summary.issues if i.file.endswith(file_end) and line in (None, i.line)]
        assert len(found) == 1, (
            f"expected one issue for {file_end}:{line}, got {found} among {self.summary.issues}"
        )
        return found[0]

    def by_source(self) -> dict[str, list[dict]]:
        """Rows grouped by the file they came from, relative to the root."""
        groups: dict[str, list[dict]] = {}
        for row in self.rows:
            groups.setdefault(json.loads(row["meta"])["source"], []).append(row)
        return groups

    def first(self, source: str) -> dict:
        return self.by_source()[source][0]

    def values(self, source: str, *columns: str) -> tuple:
        """The given columns of the first row from `source`."""
        row = self.first(source)
        return tuple(row[column] for column in columns)


@pytest.fixture
def media() -> Media:
    return Media()


@pytest.fixture
def run_importer(tmp_path):
    """Import quietly into tmp_path/out/<dataset>."""

    def run(dataset: str, root: Path, **options) -> ImportResult:
        out = tmp_path / "out" / dataset
        summary = import_dataset(dataset, root, out, ImportOptions(**options), progress=False)
        return ImportResult(summary, load_dataset_dir(out).remove_columns("image").to_list())

    return run

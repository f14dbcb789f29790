"""What every importer shares.

An importer is a *scanner*: it reads a dataset's released layout (annotation files, folder and file names) and
returns a `Scan` of `SourceItem`s (one per image, video or folder of video frames) plus an `ImportIssue` for
every annotation line or file it had to reject. `run_import` does the rest for all datasets alike: it samples
frames, crops faces, builds `Sample`s, writes the Hugging Face dataset atomically and the import summary.
"""

from __future__ import annotations

import itertools
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import datasets
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from rft.data.face import Box, FaceCrop, FaceSettings, FallbackMode, NoFaceError, crop_face
from rft.data.schema import Sample, SpoofType, load_dataset_dir, samples_to_dataset
from rft.errors import RftError
from rft.outputs import check_output_dir, replace_output_dir, write_text_atomically

VIDEO_EXTENSIONS = frozenset({".avi", ".mov", ".mp4", ".m4v", ".mkv", ".wmv", ".mpg", ".mpeg"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "dev": "dev",
    "devel": "dev",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "test": "test",
    "testing": "test",
    "eval": "test",
}
SUMMARY_FILE = "import_summary.json"
IMPORT_COMMAND = "rft import"  # named in the marker of the folders it writes (rft.outputs)
REJECTED = "rejected"
FractionBox = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image width / height


class DatasetImportError(RftError):
    """The import cannot produce a dataset at all (bad root, no annotation files, nothing valid)."""


class MediaError(ValueError):
    """An image or video cannot be read."""


class ImportOptions(BaseModel):
    """Everything that changes the imported samples (so a cached import is reused only when these match)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frames_per_video: int = Field(2, ge=1, description="Frames per video (paper 002 uses two).")
    image_size: int = Field(224, ge=32, le=2048, description="Side of the square face crop.")
    fallback: FallbackMode = Field("box", description="When no face is detected: box, center or error.")
    margin: float = Field(0.2, ge=0, le=2, description="Face box side fraction added on every side.")

    def face_settings(self) -> FaceSettings:
        return FaceSettings(image_size=self.image_size, margin=self.margin, fallback=self.fallback)


class ImportIssue(BaseModel):
    """One problem with the input, where it is, and what the importer did about it."""

    file: str
    line: int | None = None
    problem: str
    outcome: str = REJECTED

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.problem} [{self.outcome}]"


class ImportSummary(BaseModel):
    dataset: str
    root: str
    out: str
    options: ImportOptions
    sources: int = Field(description="Images, videos and frame folders the scan accepted.")
    samples: int
    rejected: int = Field(description="Annotation entries, files and frames rejected (each has an issue).")
    duplicates: int = Field(description="Entries listing a file already seen with the same labels.")
    face_crops: dict[str, int] = Field(description="How many frames took each path: detected, box, center.")
    samples_per_split: dict[str, int]
    samples_per_spoof_type: dict[str, int]
    issues: list[ImportIssue]

    def describe(self, max_issues: int = 20) -> str:
        crops = ", ".join(f"{count} {path}" for path, count in sorted(self.face_crops.items())) or "none"
        lines = [
            f"{self.dataset}: {self.samples} samples from {self.sources} sources -> {self.out}",
            f"  rejected: {self.rejected}, duplicates: {self.duplicates}, face crops: {crops}",
            f"  splits: {dict(sorted(self.samples_per_split.items()))}",
        ]
        lines += [f"  {issue}" for issue in self.issues[:max_issues]]
        if len(self.issues) > max_issues:
            lines.append(
                f"  ... and {len(self.issues) - max_issues} more issues in {self.out}/{SUMMARY_FILE}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class SourceItem:
    """One image, video or folder of video frames, with everything the annotation says about it."""

    path: Path
    spoof_type: SpoofType
    split: str = "all"
    subject_id: str | None = None
    domain: str | None = None  # None: the dataset's name
    illumination: str | None = None
    environment: str | None = None
    camera_quality: str | None = None
    box: FractionBox | None = None  # the dataset's own face box, if it ships one
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return "live" if self.spoof_type is SpoofType.LIVE else "spoof"


@dataclass
class Scan:
    """What a scanner found: the items to import (keyed by path) and the entries it rejected."""

    items: dict[Path, SourceItem] = field(default_factory=dict)
    issues: list[ImportIssue] = field(default_factory=list)
    duplicates: int = 0

    def reject(self, file: Path | str, line: int | None, problem: str) -> None:
        self.note(file, line, problem, REJECTED)

    def note(self, file: Path | str, line: int | None, problem: str, outcome: str) -> None:
        """Record a problem and what the importer did about it (`rejected`, or how the entry was kept)."""
        self.issues.append(ImportIssue(file=str(file), line=line, problem=problem, outcome=outcome))

    def add(self, item: SourceItem, listed_in: Path | None = None, line: int | None = None) -> None:
        """Keep `item` unless its file is missing or it contradicts an earlier entry for the same file."""
        where = listed_in or item.path
        if not item.path.exists():
            self.reject(where, line, f"missing file {item.path}")
            return
        known = self.items.setdefault(item.path, item)
        if known is item:
            return
        if known == item:
            self.duplicates += 1
        else:
            self.reject(
                where, line, f"{item.path} listed again as {item.spoof_type} (first as {known.spoof_type})"
            )


Scanner = Callable[[Path], Scan]


# ---------------------------------------------------------------------------------------------------------
# Reading annotation files and names


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank, stripped lines with their 1-based numbers, so every error can point at its line."""
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip():
                yield number, text.strip()


def scan_list_file(scan: Scan, list_file: Path, parse_line: Callable[[str], SourceItem]) -> None:
    """Add one item per line; `parse_line` raises ValueError on a malformed line."""
    for number, text in numbered_lines(list_file):
        try:
            item = parse_line(text)
        except ValueError as error:
            scan.reject(list_file, number, f"{error} (line: {text!r})")
            continue
        scan.add(item, list_file, number)


def scan_paths(scan: Scan, paths: Iterable[Path], parse_path: Callable[[Path], SourceItem]) -> None:
    """Add one item per file or folder; `parse_path` raises ValueError when the name does not parse."""
    for path in paths:
        try:
            item = parse_path(path)
        except ValueError as error:
            scan.reject(path, None, str(error))
            continue
        scan.add(item)


def normalize_split(name: str) -> str:
    """train / dev / test from the many spellings releases use (Train, devel, val, Testing, ...)."""
    split = SPLIT_NAMES.get(name.strip().lower())
    if split is None:
        raise ValueError(f"unknown split '{name}' (expected one of {', '.join(sorted(SPLIT_NAMES))})")
    return split


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetImportError(f"{what} not found: expected {path} (see docs/DATA.md for the layout)")
    return path


def natural_key(path: Path) -> list[Any]:
    """Sort key under which frame 2 comes before frame 10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def frame_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and is_image(p)), key=natural_key)


def media_entries(folder: Path) -> list[Path]:
    """Videos, images and folders of frames directly inside `folder` (anything else is not a sample)."""
    entries = (p for p in folder.iterdir() if p.is_dir() or is_video(p) or is_image(p))
    return sorted(entries, key=natural_key)


def media_files(folder: Path) -> list[Path]:
    """Images and videos anywhere under `folder`."""
    return sorted((p for p in folder.rglob("*") if p.is_file() and (is_video(p) or is_image(p))), key=str)


# ---------------------------------------------------------------------------------------------------------
# Frames


@dataclass(frozen=True)
class Frame:
    index: int | None  # position in the video or frame folder; None for a still image
    rgb: np.ndarray


def frame_indices(n_frames: int, count: int) -> list[int]:
    """`count` frames at the centres of `count` equal segments of the video, so they cover all of it and
    avoid the first frames (camera start-up); every frame when there are no more than `count`."""
    if n_frames <= count:
        return list(range(n_frames))
    return [int((i + 0.5) * n_frames / count) for i in range(count)]


def read_image(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise MediaError(f"cannot decode image {path} (corrupt or not an image)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_video_frames(path: Path, count: int) -> tuple[list[Frame], list[str]]:
    """Sampled frames of a video and a message per sampled frame that could not be decoded."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise MediaError(f"cannot open video {path} (corrupt or unsupported codec)")
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if total <= 0:
            raise MediaError(f"video {path} reports no frames")
        frames, problems = [], []
        for index in frame_indices(total, count):
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, bgr = capture.read()
            if ok:
                frames.append(Frame(index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            else:
                problems.append(f"frame {index} of {total} cannot be decoded")
        return frames, problems
    finally:
        capture.release()


def read_frame_folder(folder: Path, count: int) -> tuple[list[Frame], list[str]]:
    """A folder of extracted video frames is sampled like the video it came from."""
    files = frame_files(folder)
    if not files:
        raise MediaError(f"no image files in frame folder {folder}")
    frames, problems = [], []
    for index in frame_indices(len(files), count):
        try:
            frames.append(Frame(index, read_image(files[index])))
        except MediaError as error:
            problems.append(str(error))
    return frames, problems


def read_frames(path: Path, count: int) -> tuple[list[Frame], list[str]]:
    if path.is_dir():
        return read_frame_folder(path, count)
    if is_video(path):
        return read_video_frames(path, count)
    return [Frame(None, read_image(path))], []


# ---------------------------------------------------------------------------------------------------------
# From items to samples


@dataclass
class Tally:
    """Everything the summary reports, collected while the samples stream past."""

    issues: list[ImportIssue]
    face_crops: Counter[str] = field(default_factory=Counter)
    splits: Counter[str] = field(default_factory=Counter)
    spoof_types: Counter[str] = field(default_factory=Counter)

    def record(self, file: Path, problem: str, outcome: str = REJECTED) -> None:
        self.issues.append(ImportIssue(file=str(file), problem=problem, outcome=outcome))

    def count(self, sample: Sample) -> None:
        self.splits[sample.split] += 1
        self.spoof_types[sample.spoof_type.value] += 1


def pixel_box(box: FractionBox, shape: tuple[int, ...]) -> Box:
    height, width = shape[:2]
    x0, y0, x1, y1 = box
    return round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height)


def frame_name(frame: Frame) -> str:
    return "image" if frame.index is None else f"frame {frame.index}"


FALLBACK_OUTCOMES = {"box": "kept: dataset face box", "center": "kept: centre crop"}


def crop_frame(item: SourceItem, frame: Frame, options: ImportOptions, tally: Tally) -> FaceCrop | None:
    """The face crop of one frame; a frame without a detected face gets an issue whatever the fallback."""
    dataset_box = pixel_box(item.box, frame.rgb.shape) if item.box else None
    try:
        crop = crop_face(frame.rgb, options.face_settings(), dataset_box)
    except NoFaceError as error:
        tally.face_crops[REJECTED] += 1
        tally.record(item.path, f"{frame_name(frame)}: {error}")
        return None
    tally.face_crops[crop.method] += 1
    if crop.method != "detected":
        tally.record(item.path, f"{frame_name(frame)}: no face detected", FALLBACK_OUTCOMES[crop.method])
    return crop


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    """JPEG at high quality: the sources are JPEG images or compressed videos already, and a lossless PNG of
    every crop would make large datasets (CelebA-Spoof: 625k images) several times bigger."""
    ok, buffer = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise MediaError("cannot encode a face crop as JPEG")
    return buffer.tobytes()


def build_sample(dataset: str, key: str, item: SourceItem, frame: Frame, crop: FaceCrop) -> Sample:
    from_video = frame.index is not None
    return Sample(
        id=f"{dataset}/{key}" + (f"#frame{frame.index}" if from_video else ""),
        image_bytes=encode_jpeg(crop.image),
        label=item.label,
        spoof_type=item.spoof_type,
        dataset=dataset,
        domain=item.domain or dataset,
        split=item.split,
        subject_id=item.subject_id,
        video_id=key if from_video else None,
        frame_index=frame.index,
        illumination=item.illumination,
        environment=item.environment,
        camera_quality=item.camera_quality,
        face_box=crop.face_box,
        meta={**item.meta, "source": key, "face_crop": crop.method, "crop_region": list(crop.region)},
    )


def samples_of_item(
    dataset: str, root: Path, item: SourceItem, options: ImportOptions, tally: Tally
) -> Iterator[Sample]:
    try:
        frames, problems = read_frames(item.path, options.frames_per_video)
    except MediaError as error:
        tally.record(item.path, str(error))
        return
    for problem in problems:
        tally.record(item.path, problem)
    key = item.path.relative_to(root).as_posix()
    for frame in frames:
        crop = crop_frame(item, frame, options, tally)
        if crop is not None:
            sample = build_sample(dataset, key, item, frame, crop)
            tally.count(sample)
            yield sample


# ---------------------------------------------------------------------------------------------------------
# Writing


def chunks(items: Iterable[Sample], size: int) -> Iterator[list[Sample]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def write_samples(samples: Iterable[Sample], out: Path, chunk_size: int = 1000) -> int:
    """Write the samples as one dataset into the new or empty folder `out` (a staging folder). Chunks go to
    disk as they come (in out/.parts, removed at the end) so that memory stays flat on large datasets; they
    are joined (memory-mapped) at the end. Nothing is written for zero."""
    parts_dir = out / ".parts"
    parts, total = [], 0
    try:
        for number, chunk in enumerate(chunks(samples, chunk_size)):
            part = parts_dir / f"part-{number:05d}"
            samples_to_dataset(chunk).save_to_disk(str(part))
            parts.append(part)
            total += len(chunk)
        if parts:
            datasets.concatenate_datasets([load_dataset_dir(p) for p in parts]).save_to_disk(str(out))
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    return total


def summarize(
    dataset: str, root: Path, out: Path, options: ImportOptions, scan: Scan, tally: Tally
) -> ImportSummary:
    return ImportSummary(
        dataset=dataset,
        root=str(root.resolve()),
        out=str(out),
        options=options,
        sources=len(scan.items),
        samples=sum(tally.splits.values()),
        rejected=sum(issue.outcome == REJECTED for issue in tally.issues),
        duplicates=scan.duplicates,
        face_crops=dict(tally.face_crops),
        samples_per_split=dict(tally.splits),
        samples_per_spoof_type=dict(tally.spoof_types),
        issues=tally.issues,
    )


def write_summary(summary: ImportSummary, out: Path) -> None:
    """Next to the dataset, so that it travels with it; printed too."""
    write_text_atomically(out / SUMMARY_FILE, summary.model_dump_json(indent=2))
    print(summary.describe())


def is_earlier_import(folder: Path) -> bool:
    """An import written before output folders were marked (rft.outputs)."""
    return (folder / SUMMARY_FILE).is_file()


def run_import(
    dataset: str, scanner: Scanner, root: Path, out: Path, options: ImportOptions, progress: bool = True
) -> ImportSummary:
    """Scan `root`, turn every item into face-cropped samples, write the dataset to `out` and the summary to
    `out/import_summary.json`, replacing `out` atomically. Raises DatasetImportError when nothing at all could
    be imported, and OutputDirError (before any work) when `out` exists and was not made by `rft import`."""
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise DatasetImportError(f"{dataset}: root {root} is not a folder; point it at the released dataset")
    check_output_dir(out, IMPORT_COMMAND, legacy=is_earlier_import)
    scan = scanner(root)
    if not scan.items and not scan.issues:
        raise DatasetImportError(
            f"{dataset}: nothing to import under {root} (see docs/DATA.md for the layout)"
        )

    def write(staging: Path) -> tuple[int, ImportSummary]:
        tally = Tally(issues=list(scan.issues))
        items = tqdm(scan.items.values(), desc=f"import {dataset}", unit="source", disable=not progress)
        written = write_samples(
            (s for item in items for s in samples_of_item(dataset, root, item, options, tally)), staging
        )
        summary = summarize(dataset, root, out, options, scan, tally)
        write_summary(summary, staging)
        return written, summary

    written, summary = replace_output_dir(out, IMPORT_COMMAND, write, legacy=is_earlier_import)
    if written == 0:
        raise DatasetImportError(
            f"{dataset}: no valid sample under {root}; {summary.rejected} rejected (see {out / SUMMARY_FILE})"
        )
    return summary

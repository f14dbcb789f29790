"""`rft import DATASET --root DIR --out DIR`: import a public FAS dataset from its released layout."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

from pydantic import ValidationError

from rft.data.importers import IMPORTERS, DatasetImportError, ImportOptions, import_dataset
from rft.outputs import OutputDirError

DATASET_NAME = re.compile(r"[a-z][a-z0-9_]*")  # it becomes the data.roots key and the samples' dataset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rft import",
        description="Import a face anti-spoofing dataset: sample video frames, crop faces, save a dataset.",
    )
    parser.add_argument(
        "dataset",
        help=f"{', '.join(IMPORTERS)}; any other name is read as a generic real/ + fake/ folder",
    )
    parser.add_argument("--root", type=Path, required=True, help="the dataset as released")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder of the saved dataset: new, or an earlier import (replaced)",
    )
    parser.add_argument("--frames-per-video", type=int, default=2, help="evenly spaced frames per video")
    parser.add_argument("--image-size", type=int, default=224, help="side of the square face crop")
    parser.add_argument(
        "--margin", type=float, default=0.2, help="face box side fraction added on every side"
    )
    parser.add_argument(
        "--fallback",
        choices=["box", "center", "error"],
        default="box",
        help="when no face is detected: the dataset's box (else a centre crop), a centre crop, or reject",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def options_from(args: argparse.Namespace) -> ImportOptions:
    return ImportOptions(
        frames_per_video=args.frames_per_video,
        image_size=args.image_size,
        fallback=args.fallback,
        margin=args.margin,
    )


def close_importer(name: str) -> str:
    close = difflib.get_close_matches(name, list(IMPORTERS), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe_option_errors(error: ValidationError) -> str:
    """`--image-size: Input should be greater than or equal to 32` for each bad option."""
    return "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in error.errors())


def fail(message: str, exit_code: int) -> int:
    print(f"rft import: {message}", file=sys.stderr)
    return exit_code


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        options = options_from(args)
    except ValidationError as error:
        return fail(describe_option_errors(error), 2)
    if not DATASET_NAME.fullmatch(args.dataset):
        return fail(f"dataset name '{args.dataset}' must be lower-case letters, digits and _", 2)
    if args.dataset not in IMPORTERS:
        print(
            f"rft import: no importer for '{args.dataset}'{close_importer(args.dataset)}; "
            f"reading {args.root} as a real/ + fake/ folder"
        )
    try:
        import_dataset(args.dataset, args.root, args.out, options, progress=not args.no_progress)
    except DatasetImportError as error:
        return fail(str(error), 1)
    except OutputDirError as error:
        return fail(f"--out {error}", 2)
    return 0

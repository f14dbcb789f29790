"""Latency of the six visual tools (rft/tools) on one CPU core.

Each call goes through `rft.tools.run_tool`, as the reward service makes it: argument validation, image check
and the operator. Every tool is timed with its default arguments and, where arguments change the cost, with
the slowest allowed ones, on RGB images of each requested size. The result is a Markdown table of the
minimum, median and 95th percentile over `--runs` calls after `--warmup` calls. The acceptance target is a
default-argument call under 20 ms on a 224x224 image.

    .venv/bin/python benchmarks/bench_tools.py --runs 200 --skimage-hog
"""

from __future__ import annotations

import os

# Pin every numerical library to one thread before any of them is imported: their thread pools are sized
# at import time, and a benchmark on "one core" with eight BLAS threads competing for it measures contention.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import functools  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pywt  # noqa: E402
import skimage  # noqa: E402
from skimage.feature import hog  # noqa: E402

from rft.tools import run_tool  # noqa: E402
from rft.tools.images import rgb_to_gray  # noqa: E402


@dataclass(frozen=True)
class Case:
    tool: str
    label: str
    arguments: dict[str, Any]


CASES = (
    Case(
        "ZoomInTool",
        "central half (normalized)",
        {"bbox": [0.25, 0.25, 0.75, 0.75], "coordinates": "normalized"},
    ),
    Case("FFTTool", "default", {}),
    Case("LBPTool", "default (P=8, R=1)", {}),
    Case("LBPTool", "slowest (P=16, R=3)", {"P": 16, "R": 3}),
    Case("WaveletTransformTool", "default (haar)", {}),
    Case("WaveletTransformTool", "slowest (coif1)", {"wavelet": "coif1"}),
    Case("EdgeDetectionTool", "default (ksize=1)", {}),
    Case("EdgeDetectionTool", "slowest (ksize=5)", {"ksize": 5}),
    Case("HOGTool", "default (9 bins, 8 px cells)", {}),
    Case("HOGTool", "slowest (18 bins, 4 px cells)", {"orientations": 18, "pixels_per_cell": 4}),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="timed calls per tool and size (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls before timing (default 20)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 448], help="square image sides")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin the process to (default 0)")
    parser.add_argument("--budget-ms", type=float, default=20.0, help="target for a default call at 224 px")
    parser.add_argument(
        "--skimage-hog",
        action="store_true",
        help="also time skimage.feature.hog(visualize=True), the picture HOGTool reproduces without its loop",
    )
    return parser.parse_args()


def face_like_image(size: int, seed: int = 0) -> np.ndarray:
    """A deterministic stand-in for a face crop: smooth shading plus sensor-like noise. Timings hardly
    depend on content (no operator has data-dependent loops), but noise keeps every code path busy."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:size, 0:size] / size
    shading = 120 + 80 * np.sin(3 * rows) * np.cos(2 * columns)
    channels = [shading + offset + rng.normal(0, 8, (size, size)) for offset in (10, 0, -10)]
    return np.clip(np.stack(channels, axis=2), 0, 255).astype(np.uint8)


def time_calls(call: Callable[[], object], runs: int, warmup: int) -> tuple[float, float, float]:
    """Minimum, median and 95th percentile of `runs` calls of `call()`, in milliseconds. On a shared machine
    the minimum is the best estimate of the uncontended cost; median and p95 include the contention."""
    for _ in range(warmup):
        call()
    durations = np.empty(runs)
    for index in range(runs):
        start = time.perf_counter_ns()
        call()
        durations[index] = time.perf_counter_ns() - start
    milliseconds = durations / 1e6
    return float(milliseconds.min()), float(np.median(milliseconds)), float(np.percentile(milliseconds, 95))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def main() -> None:
    args = parse_args()
    os.sched_setaffinity(0, {args.core})
    cv2.setNumThreads(1)
    images = {size: face_like_image(size) for size in args.sizes}

    print(f"CPU: {cpu_model()}, pinned to core {args.core}, one thread")
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, opencv {cv2.__version__}, "
        f"scikit-image {skimage.__version__}, PyWavelets {pywt.__version__}; "
        f"{args.runs} timed calls after {args.warmup} warm-up calls\n"
    )
    size_headers = " | ".join(f"{size}px min | {size}px median | {size}px p95" for size in args.sizes)
    print(f"Times in milliseconds.\n\n| tool | arguments | {size_headers} |")
    print("|---|---|" + "---:|---:|---:|" * len(args.sizes))
    over_budget = []
    for case in CASES:
        cells = []
        for size in args.sizes:
            call = functools.partial(run_tool, case.tool, images[size], case.arguments)
            minimum, median, p95 = time_calls(call, args.runs, args.warmup)
            cells.append(f"{minimum:.2f} | {median:.2f} | {p95:.2f}")
            if size == 224 and median >= args.budget_ms:
                over_budget.append(f"{case.tool} ({case.label}): {median:.2f} ms")
        print(f"| {case.tool} | {case.label} | {' | '.join(cells)} |")
    if args.skimage_hog:
        print_skimage_hog_row(images, args)
    print()
    if over_budget:
        print(f"Over the {args.budget_ms:g} ms budget at 224x224 (median): " + "; ".join(over_budget))
    else:
        print(f"Every call's median at 224x224 is under {args.budget_ms:g} ms.")


def print_skimage_hog_row(images: dict[int, np.ndarray], args: argparse.Namespace) -> None:
    # Few runs: at ~100 ms a call, 200 of them per size would dominate the benchmark.
    runs, warmup = min(args.runs, 20), min(args.warmup, 2)
    cells = []
    for image in images.values():
        gray = rgb_to_gray(image)
        call = functools.partial(hog, gray, 9, (8, 8), (1, 1), visualize=True)
        minimum, median, p95 = time_calls(call, runs, warmup)
        cells.append(f"{minimum:.2f} | {median:.2f} | {p95:.2f}")
    label = f"9 bins, 8 px cells, {runs} runs"
    print(f"| (reference) `skimage.feature.hog`, `visualize=True` | {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()

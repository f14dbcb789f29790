"""Every benchmark script answers `--help` (exit 0, its usage and the command its figures came from)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[2] / "benchmarks").glob("bench_*.py"))


def test_there_are_benchmarks() -> None:
    assert len(BENCHMARKS) >= 4


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda path: path.stem)
def test_help_exits_cleanly_with_the_usage(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage:") and f"python benchmarks/{script.name}" in done.stdout

"""`python -m dashboard RUNS_DIR` (the same as `rft dashboard RUNS_DIR`)."""

from __future__ import annotations

import sys

from dashboard.cli import main
from rft.errors import run_command

if __name__ == "__main__":
    sys.exit(run_command(lambda: main(), prog="rft dashboard"))

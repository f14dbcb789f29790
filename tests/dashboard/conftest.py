"""Fixtures of the dashboard tests: run folders written by the project's writers, a dashboard server on a
loopback port, and a headless Chromium driven by Playwright (Debian's chromium; never `playwright install`)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Appended, not inserted: `conftest` must keep naming the folder whose tests import it.
sys.path.append(str(Path(__file__).parent))

from dashboard_server import CHROMIUM, CHROMIUM_ARGS, Server


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished 6-step runs: `healthy/grpo` keeps calling tools, `collapse/grpo` stops at step 3."""
    from dashboard_runs import write_evaluation, write_run

    runs_dir = tmp_path_factory.mktemp("runs")
    write_run(runs_dir / "healthy" / "grpo", 6)
    write_run(runs_dir / "collapse" / "grpo", 6, tools_until=3)
    write_evaluation(runs_dir / "healthy" / "grpo", 6)
    return runs_dir


@pytest.fixture(scope="session")
def baseline_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Baseline runs with training logs only: `instructflip` (finished) and `caption` (at a checkpoint)."""
    from dashboard_runs import write_baseline_runs

    runs_dir = tmp_path_factory.mktemp("baselines")
    write_baseline_runs(runs_dir)
    return runs_dir


@pytest.fixture(scope="session")
def finished_server(finished_runs: Path) -> Iterator[Server]:
    with Server(finished_runs) as server:
        yield server


# Per module: a live sync Playwright keeps an event loop running in the main thread, and later tests that
# call asyncio.run() (the services, the trainer) would fail for the rest of the session.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install -y chromium`, as root; "
            "scripts/setup_env.sh does it) to run the dashboard's browser tests",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture
def runs_copy(tmp_path: Path, finished_runs: Path) -> Path:
    """A copy of the finished runs that a test may change."""
    return Path(shutil.copytree(finished_runs, tmp_path / "runs"))

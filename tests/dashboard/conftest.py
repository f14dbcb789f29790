"""Fixtures of the dashboard tests: run folders written by the project's writers, a dashboard server on a
loopback port, and a headless Chromium driven by Playwright (Debian's chromium; never `playwright install`)."""

from __future__ import annotations

import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A dashboard app served by uvicorn in a thread of the test process."""

    def __init__(self, runs_dir: Path) -> None:
        import uvicorn

        from dashboard.app import build_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            build_app(runs_dir, poll_seconds=0.3), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def get(self, route: str, **params: str) -> requests.Response:
        return requests.get(self.url + route, params=params, timeout=30)


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished 6-step runs: `healthy/grpo` keeps calling tools, `collapse/grpo` stops at step 3."""
    from dashboard_runs import write_run

    runs_dir = tmp_path_factory.mktemp("runs")
    write_run(runs_dir / "healthy" / "grpo", 6)
    write_run(runs_dir / "collapse" / "grpo", 6, tools_until=3)
    return runs_dir


@pytest.fixture(scope="session")
def finished_server(finished_runs: Path) -> Iterator[Server]:
    with Server(finished_runs) as server:
        yield server


@pytest.fixture(scope="session")
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

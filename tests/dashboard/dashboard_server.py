"""The dashboard tests' server helpers, under a name of their own: test modules of several folders import
`conftest`, and whichever folder is first on sys.path would win (tests/rollout_server's does)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import requests

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

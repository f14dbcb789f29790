"""One real reward service (Ray Serve on this machine, loopback only) shared by the module's tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def service_url() -> Iterator[str]:
    from reward_service.app import ServiceSettings, start, stop

    settings = ServiceSettings(replicas=2, replica_cpus=0.5, request_timeout_s=120)
    url = start(settings, host="127.0.0.1", port=free_port(), num_cpus=2)
    yield url
    stop()

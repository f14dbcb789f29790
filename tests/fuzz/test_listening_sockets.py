"""Closed by default: with both services running as an operator starts them (tests/fuzz/conftest.py), the
rollout server's vLLM engine and the reward service's own Ray included, no process they started listens
beyond loopback."""

from __future__ import annotations

import ipaddress

import psutil


def listening(processes: list[psutil.Process]) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every TCP/UDP socket the processes listen on (UDP: bound)."""
    found = []
    for process in processes:
        try:
            connections = process.net_connections(kind="inet")
            name = process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for connection in connections:
            if connection.status in (psutil.CONN_LISTEN, psutil.CONN_NONE) and connection.laddr:
                found.append((name, connection.laddr.ip, connection.laddr.port))
    return found


def test_no_port_of_either_service_or_ray_listens_beyond_loopback(rollout_server, reward_service):
    rollout, reward = listening(rollout_server.processes()), listening(reward_service.processes())
    # The check sees what it should: each service's own HTTP port, and Ray's GCS among the reward side's.
    assert ("127.0.0.1", int(rollout_server.url.rsplit(":", 1)[1])) in {(a, p) for _, a, p in rollout}
    assert ("127.0.0.1", int(reward_service.url.rsplit(":", 1)[1])) in {(a, p) for _, a, p in reward}
    assert any(name.startswith("gcs_server") for name, _, _ in reward), reward
    exposed = [s for s in rollout + reward if not ipaddress.ip_address(s[1].split("%")[0]).is_loopback]
    assert exposed == []

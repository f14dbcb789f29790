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


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_no_port_of_either_service_or_ray_listens_beyond_loopback(rollout_server, reward_service):
    rollout, reward = listening(rollout_server.processes()), listening(reward_service.processes())
    # The check sees what it should: each service's own HTTP port, and Ray's GCS among the reward side's.
    assert ("127.0.0.1", port_of(rollout_server.url)) in {(a, p) for _, a, p in rollout}
    assert any(p == port_of(reward_service.url) and is_loopback(a) for _, a, p in reward), reward
    assert any(name.startswith("gcs_server") for name, _, _ in reward), reward
    exposed = [s for s in rollout + reward if not is_loopback(s[1])]
    assert exposed == []


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4 loopback address mapped into IPv6 (::ffff:127.0.0.1, where a dual-stack
    socket bound to 127.0.0.1 shows up)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback

"""`python -m reward_service` with a token and a 1 MiB body limit, for real (conftest's `secured_service`):
who may call what, bodies over the limit, and every port it and its Ray open on loopback."""

from __future__ import annotations

import ipaddress
import socket
import uuid

import psutil
import pytest
import requests

from reward_service.api import TOKEN_ENV
from reward_service.client import RewardClient, RewardServiceError

EPISODE = {"id": "r0", "label": "live", "turns": ["<Real><reason>ok</reason>", "<answer><Real></answer>"]}
# Who calls: nobody's token, a wrong one, the service's.
CALLERS = [("none", 401), ("wrong", 403), ("right", 200)]


def headers(service, caller: str = "right") -> dict[str, str]:
    token = {"none": None, "wrong": "not-" + service.token, "right": service.token}[caller]
    return {"Authorization": f"Bearer {token}"} if token else {}


def score_body() -> dict:
    return {"request_id": uuid.uuid4().hex, "method": "dt_grpo", "rollouts": [EPISODE]}


@pytest.mark.parametrize(("caller", "status"), CALLERS)
def test_v1_needs_the_token(secured_service, caller, status):
    url, sent = secured_service.url, headers(secured_service, caller)
    score = requests.post(url + "/v1/score", json=score_body(), headers=sent, timeout=30)
    echo = requests.post(url + "/v1/echo", data=b"{}", headers=sent, timeout=30)
    assert (score.status_code, echo.status_code) == (status, status), score.text[:300]
    if status != 200:
        assert secured_service.token not in score.text and "\n" not in score.json()["error"]


@pytest.mark.parametrize(("caller", "status"), CALLERS)
def test_metrics_and_the_schema_need_the_token(secured_service, caller, status):
    for path in ("/metrics", "/openapi.json"):
        reply = requests.get(secured_service.url + path, headers=headers(secured_service, caller), timeout=30)
        assert reply.status_code == status
    if status == 200:
        assert "/v1/score" in reply.json()["paths"]


def test_the_api_pages_are_off_and_the_probes_open(secured_service):
    for path in ("/docs", "/redoc"):
        reply = requests.get(secured_service.url + path, headers=headers(secured_service), timeout=30)
        assert reply.status_code == 404
    for path in ("/healthz", "/readyz"):
        assert requests.get(secured_service.url + path, timeout=30).status_code == 200


def test_the_client_sends_its_token(secured_service, monkeypatch):
    url, token = secured_service.url, secured_service.token
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert [s.id for s in RewardClient(url, token=token).score("dt_grpo", [EPISODE])] == ["r0"]
    with pytest.raises(RewardServiceError, match="401"):
        RewardClient(url, retries=0).score("dt_grpo", [EPISODE])
    monkeypatch.setenv(TOKEN_ENV, token)
    assert [s.id for s in RewardClient(url).score("dt_grpo", [EPISODE])] == ["r0"]


def test_a_body_over_the_limit_is_a_413_without_being_parsed(secured_service):
    url, limit, sent = secured_service.url, secured_service.max_body_bytes, headers(secured_service)
    # Not JSON at all: parsed, it would have been a 422.
    reply = requests.post(url + "/v1/score", data=b"{" * (limit + 1), headers=sent, timeout=30)
    assert reply.status_code == 413 and str(limit) in reply.json()["error"]
    reply = requests.post(url + "/v1/tools", data=b"{" * limit, headers=sent, timeout=30)
    assert reply.status_code == 422  # at the limit: parsed, and refused as the bad JSON it is


def test_a_streamed_body_over_the_limit_is_a_413(secured_service):
    chunks = (b"[" * (64 << 10) for _ in range(24))  # 1.5 MiB, chunked: no Content-Length
    reply = requests.post(
        secured_service.url + "/v1/score", data=chunks, headers=headers(secured_service), timeout=60
    )
    assert reply.status_code == 413


def test_the_token_is_checked_before_the_body_is_read(secured_service):
    host, port = secured_service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        )  # no body, no token
        assert sock.recv(4096).startswith(b"HTTP/1.1 401 ")


def test_every_port_of_the_service_and_its_ray_is_on_loopback(secured_service):
    listening = [
        (process.name(), connection.laddr.ip, connection.laddr.port)
        for process in secured_service.processes()
        for connection in listening_sockets(process)
    ]
    http_port = int(secured_service.url.rsplit(":", 1)[1])
    assert http_port in [port for _, _, port in listening]
    assert len(listening) > 5, listening  # GCS, raylet, workers...: the check saw Ray's processes
    exposed = [entry for entry in listening if not is_loopback_ip(entry[1])]
    assert not exposed, f"listening beyond loopback: {exposed}"


def listening_sockets(process: psutil.Process) -> list:
    try:
        return [c for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return []


def is_loopback_ip(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback

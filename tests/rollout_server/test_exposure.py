"""The rollout server closed by default: no listening beyond loopback without a token, and with a token the
schema and the counters are its holders' only (no engine needed: nothing here samples)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from rollout_server.app import create_app
from rollout_server.cli import TOKEN_ENV, parse_args, worker_argv

TOKEN = "s3cret"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "node7"])
def test_beyond_loopback_without_a_token_is_refused_in_one_line(
    model_dir: Path, host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--model", str(model_dir), "--host", host])
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and error.count("\n") == 1
    assert error.startswith(f"error: refusing to listen on '{host}' without a token") and "--token" in error


def test_loopback_needs_no_token_and_a_token_opens_any_host(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert parse_args(["--model", str(model_dir)]).token is None
    assert parse_args(["--model", str(model_dir), "--host", "0.0.0.0", "--token", "t"]).token == "t"
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert parse_args(["--model", str(model_dir), "--host", "0.0.0.0"]).token == "from-env"
    assert capsys.readouterr().err == ""


def test_insecure_no_token_warns_and_reaches_the_pool_workers(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    args = parse_args(["--model", str(model_dir), "--host", "0.0.0.0", "--insecure-no-token"])
    assert capsys.readouterr().err.startswith("WARNING: listening on '0.0.0.0' without a token")
    # Each worker of --workers N parses its own command line, which must not refuse what the pool accepted.
    assert "--insecure-no-token" in worker_argv(args, 8201)


def test_the_command_refuses_before_loading_anything(model_dir: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "rollout_server", "--model", str(model_dir), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2 and "refusing to listen on '0.0.0.0' without a token" in done.stderr


def client(token: str | None) -> TestClient:
    """The app before start-up (no engine): the routes below never need one."""
    return TestClient(create_app(lambda: SimpleNamespace(), token=token))


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 403), ({"Authorization": f"Bearer {TOKEN}"}, 200)],
)
def test_with_a_token_the_schema_and_metrics_need_it(headers: dict, status: int) -> None:
    app = client(TOKEN)
    for path in ("/openapi.json", "/metrics"):
        reply = app.get(path, headers=headers)
        assert reply.status_code == status, path
        if status != 200:
            assert TOKEN not in reply.text and reply.json()["error"].count("\n") == 0
    assert app.get("/healthz").status_code == 200  # the probes stay open to the orchestrator
    assert app.get("/readyz").status_code == 503


def test_with_a_token_the_api_pages_are_off() -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        assert client(TOKEN).get(path, headers=auth).status_code == 404, path


def test_without_a_token_loopback_serves_everything() -> None:
    app = client(None)
    for path in ("/openapi.json", "/metrics", "/docs", "/redoc"):
        assert app.get(path).status_code == 200, path


def test_the_schema_describes_every_request_body() -> None:
    schema = client(None).get("/openapi.json").json()
    bodies = {
        path: next(iter(operation["post"]["requestBody"]["content"]))
        for path, operation in schema["paths"].items()
        if "post" in operation
    }
    assert bodies == {
        "/v1/samples": "application/json",
        "/v1/episodes": "application/json",
        "/v1/chat/completions": "application/json",
        "/v1/weights": "application/octet-stream",
        "/v1/adapters": "application/json",
    }
    sampling = schema["components"]["schemas"]["Sampling"]["properties"]
    assert sampling["max_tokens"]["maximum"] == 32768

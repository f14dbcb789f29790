"""The dashboard serves only files inside the run folders it was given, and only reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from dashboard_server import Server

from dashboard.paths import PathRefused, file_in_run, find_runs

IMAGE = "rollouts/images/step_000001/e000_0.png"


@pytest.fixture
def server(runs_copy: Path):
    outside = runs_copy.parent / "secret.txt"
    outside.write_text("not for the dashboard")
    os.symlink(outside, runs_copy / "healthy" / "grpo" / "link_out.txt")
    os.symlink(runs_copy / "healthy" / "grpo" / IMAGE, runs_copy / "healthy" / "grpo" / "link_in.png")
    (runs_copy.parent / "elsewhere" / "rollouts").mkdir(parents=True)
    os.symlink(runs_copy.parent / "elsewhere", runs_copy / "linked_run")
    with Server(runs_copy) as served:
        yield served


def test_a_file_inside_a_run_is_served(server: Server):
    reply = server.get("/files", run="healthy/grpo", path=IMAGE)
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    assert reply.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert server.get("/files", run="healthy/grpo", path="link_in.png").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "../collapse/grpo/" + IMAGE,
        "rollouts/../../../secret.txt",
        "/etc/passwd",
        "link_out.txt",
        "rollouts\\..\\..\\secret.txt",
        "rollouts",
        "",
    ],
)
def test_paths_outside_the_run_are_refused(server: Server, path: str):
    reply = server.get("/files", run="healthy/grpo", path=path)
    assert reply.status_code in (403, 422), reply.text
    assert "not for the dashboard" not in reply.text and "root:" not in reply.text


def test_an_unknown_or_symlinked_run_is_not_a_run(server: Server):
    assert server.get("/files", run="..", path="secret.txt").status_code == 404
    assert server.get("/files", run="linked_run", path="x").status_code == 404
    runs = [run["id"] for run in server.get("/api/state").json()["runs"]]
    assert runs == ["collapse/grpo", "healthy/grpo"]


def test_the_dashboard_only_reads(server: Server):
    for method in (requests.post, requests.put, requests.delete):
        assert (
            method(
                server.url + "/files", params={"run": "healthy/grpo", "path": IMAGE}, timeout=10
            ).status_code
            == 405
        )


def test_file_in_run_refuses_each_way_out(tmp_path: Path):
    run = tmp_path / "run"
    (run / "rollouts").mkdir(parents=True)
    (run / "rollouts" / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    os.symlink(tmp_path / "b.txt", run / "out.txt")
    assert file_in_run(run, "rollouts/a.txt") == (run / "rollouts" / "a.txt").resolve()
    for path in ("../b.txt", str(tmp_path / "b.txt"), "out.txt", "rollouts", "missing.txt", "a\x00b"):
        with pytest.raises(PathRefused):
            file_in_run(run, path)
    assert list(find_runs(tmp_path)) == ["run"]

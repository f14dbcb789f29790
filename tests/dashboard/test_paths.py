"""The dashboard serves only files inside the run folders it was given, and only reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
from dashboard_server import Server

from dashboard.logs import LogsReader
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


@pytest.fixture
def evil_eval(runs_copy: Path) -> Server:
    """An evaluation whose records name images outside the run, one of them through a symlink."""
    run = runs_copy / "healthy" / "grpo"
    secret = runs_copy.parent / "secret.png"
    secret.write_bytes(b"\x89PNG\r\n\x1a\nnot for the dashboard")
    os.symlink(secret, run / "eval" / "images" / "link_out.png")
    references = ["../../../secret.png", str(secret), "images/link_out.png", "images\\..\\..\\secret.png", 7]
    lines = [
        json.dumps({"id": f"x{i}", "label": "live", "scores": {"final": 0.9}, "image": ref})
        for i, ref in enumerate(references)
    ]
    # A record of junk (NaN label, domain and score, turns that are a string) and a line that is not JSON.
    lines += ['{"id": 5, "label": NaN, "domain": NaN, "scores": {"final": NaN}, "turns": "abc"}', "not json"]
    (run / "eval" / "samples_step_000009.jsonl").write_text("\n".join(lines) + "\n")
    with Server(runs_copy) as served:
        yield served


def test_evaluation_images_outside_the_run_are_never_served(evil_eval: Server):
    view = evil_eval.get("/api/eval", run="healthy/grpo", step="9").json()
    images = [sample["image"] for sample in view["samples"]]
    # Only a plain relative path is kept; the junk record is shown without image, score or turns.
    assert images == [None, None, "eval/images/link_out.png", None, None, None]
    assert view["samples"][-1]["scores"] == {"final": None} and view["samples"][-1]["turns"] == []
    assert evil_eval.get("/files", run="healthy/grpo", path="eval/images/link_out.png").status_code == 403
    for path in ("eval/../../../secret.png", "eval/images/../../../../secret.png"):
        reply = evil_eval.get("/files", run="healthy/grpo", path=path)
        assert reply.status_code == 403 and "not for the dashboard" not in reply.text
    good = evil_eval.get("/api/eval", run="healthy/grpo", step="6").json()["samples"][0]["image"]
    assert evil_eval.get("/files", run="healthy/grpo", path=good).headers["content-type"] == "image/png"


@pytest.mark.parametrize("run", ["..", "../healthy/grpo", "/etc", "healthy/grpo/eval", "linked_run"])
def test_the_new_routes_refuse_runs_that_are_not_runs(evil_eval: Server, run: str):
    assert evil_eval.get("/api/eval", run=run, step="6").status_code == 404
    assert evil_eval.get("/api/step", run=run, step="1").status_code == 404


def test_a_chart_id_never_names_a_file(evil_eval: Server):
    for chart in ("s:../../secret.png", "/etc/passwd", "e:../../../secret.png"):
        reply = evil_eval.get("/api/chart_points", id=chart)
        assert reply.status_code == 200 and reply.json()["points"] == []


def test_training_logs_reached_through_a_symlink_are_not_read(tmp_path: Path):
    outside = tmp_path / "outside"
    (outside / "checkpoint-9").mkdir(parents=True)
    (outside / "train_log.json").write_text(json.dumps([{"step": 1, "loss_secret": 1.0}]))
    (outside / "checkpoint-9" / "trainer_state.json").write_text(
        json.dumps({"log_history": [{"step": 1, "loss_x": 1.0}]})
    )
    runs = tmp_path / "runs"
    (runs / "linked_log").mkdir(parents=True)
    os.symlink(outside / "train_log.json", runs / "linked_log" / "train_log.json")
    (runs / "linked_checkpoints").mkdir()
    os.symlink(outside, runs / "linked_checkpoints" / "checkpoints")
    (runs / "real" / "checkpoints").mkdir(parents=True)
    os.symlink(outside / "checkpoint-9", runs / "real" / "checkpoints" / "checkpoint-9")
    (runs / "real" / "train_log.json").write_text(json.dumps([{"step": 2, "loss": 0.5}]))
    assert list(find_runs(runs)) == ["real"]
    assert LogsReader(runs / "real").series() == {"loss": {2: 0.5}}
    assert LogsReader(runs / "linked_log").series() == {} == LogsReader(runs / "linked_checkpoints").series()

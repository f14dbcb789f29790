"""launch/evaluate.py: checkpoints scored on a protocol's targets by a real in-process vLLM engine, and every
bad input refused in one line before any data is generated or model loaded."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def evaluate_launcher():
    spec = importlib.util.spec_from_file_location("evaluate_launcher", ROOT / "launch" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toy_overrides(tmp_path: Path, benchmark: Path) -> list[str]:
    return [
        f"run.output_dir={tmp_path / 'runs'}",
        f"data.cache_dir={tmp_path / 'data'}",
        f"data.roots.synthetic={benchmark}",
        "data.image_size=64",
        "grpo.max_completion_length=24",
        "eval.max_samples=4",
        "eval.batch_size=4",
    ]


@pytest.fixture
def checkpoint(model_cache: Path) -> Path:
    from rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny")


def evaluate(tmp_path: Path, out: Path, *model_dirs: Path, benchmark: Path) -> tuple[dict, str]:
    command = [
        sys.executable,
        str(ROOT / "launch" / "evaluate.py"),
        "--config",
        "demo_cpu",
        "--out",
        str(out),
    ]
    for model_dir in model_dirs:
        command += ["--model", str(model_dir)]
    command += [*toy_overrides(tmp_path, benchmark), "data.protocol=synth_street_all"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


@pytest.mark.slow  # a real vLLM engine (CPU build) and real greedy tool episodes
def test_each_checkpoint_is_scored_with_its_own_weights(
    tmp_path, protocol_model_dir, checkpoint, tiny_benchmark
):
    # The protocol model writes paper 003's episodes (tool calls, an answer); the random one does not.
    first, other = protocol_model_dir, checkpoint
    both, stdout = evaluate(tmp_path, tmp_path / "scores.json", first, other, benchmark=tiny_benchmark)
    assert list(both) == [str(first), str(other)]
    for model_dir, result in both.items():
        assert list(result) == ["street"]  # every split of it: 12 faces, of which eval.max_samples
        for answer in ("fast", "final"):
            assert f"[{model_dir}] target street ({answer} answer): HTER" in stdout
            assert result["street"][answer]["overall"]["n_samples"] == 4
    # Scored second, after the engine served the protocol model, the random policy's final answers are all
    # forced, as they are when an engine starts on it: its episodes come from its own weights, pushed into
    # the engine, not from the protocol model's.
    assert both[str(first)]["street"]["final_forced_fraction"] == 0.0
    assert both[str(other)]["street"]["final_forced_fraction"] == 1.0


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--model", "no/such/folder"], "--model no/such/folder is not a checkpoint folder"),
        (["--model", "{model}", "--model", "{model}"], "is given twice"),
        (["--model", "{model}", "data.protocol=cefa_to_hqwmca"], "data.roots.cefa"),
        (["--model", "{model}", "eval.max_sampels=3"], "eval.max_sampels"),
    ],
)
def test_bad_input_fails_in_one_line_before_any_data(tmp_path, capsys, checkpoint, arguments, named):
    argv = [argument.format(model=checkpoint) for argument in arguments]
    argv = [
        "--config",
        "demo_cpu",
        *argv,
        f"run.output_dir={tmp_path / 'runs'}",
        f"data.cache_dir={tmp_path / 'data'}",
    ]
    capsys.readouterr()  # the fixture's progress bars, when it built the model
    assert evaluate_launcher().main(argv) == 2
    error = capsys.readouterr().err
    assert named in error and error.count("\n") == 1
    assert not (tmp_path / "data").exists()


def test_an_existing_metrics_file_is_kept_without_overwrite(tmp_path, capsys, checkpoint):
    out = tmp_path / "scores.json"
    out.write_text("earlier results\n")
    argv = [
        "--config",
        "demo_cpu",
        "--model",
        str(checkpoint),
        "--out",
        str(out),
        f"data.cache_dir={tmp_path / 'data'}",
    ]
    capsys.readouterr()  # the fixture's progress bars, when it built the model
    assert evaluate_launcher().main(argv) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "earlier results\n"
    assert not (tmp_path / "data").exists()


def test_a_checkpoint_the_first_ones_engine_cannot_serve_is_refused(
    tmp_path, capsys, checkpoint, model_cache
):
    from rft.models.tiny import ensure_tiny_model

    internvl = ensure_tiny_model(model_cache, "internvl3", "tiny")
    argv = ["--config", "demo_cpu", "--model", str(checkpoint), "--model", str(internvl)]
    capsys.readouterr()  # the fixture's progress bars, when it built the model
    assert evaluate_launcher().main([*argv, f"data.cache_dir={tmp_path / 'data'}"]) == 2
    error = capsys.readouterr().err
    assert f"--model {internvl} differs from --model {checkpoint}" in error and error.count("\n") == 1
    assert not (tmp_path / "data").exists()


def test_an_unreadable_checkpoint_or_a_folder_as_out_is_refused(tmp_path, capsys, checkpoint):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"\x00" * 16)
    data = f"data.cache_dir={tmp_path / 'data'}"
    capsys.readouterr()
    assert evaluate_launcher().main(["--config", "demo_cpu", "--model", str(broken), data]) == 2
    assert f"--model {broken} cannot be read" in capsys.readouterr().err
    argv = ["--config", "demo_cpu", "--model", str(checkpoint), "--out", str(tmp_path), "--overwrite", data]
    assert evaluate_launcher().main(argv) == 2
    assert f"--out {tmp_path} is a folder" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_a_config_without_a_policy_is_refused(tmp_path, capsys, checkpoint):
    argv = ["--config", "instructflip_cpu", "--model", str(checkpoint), f"data.cache_dir={tmp_path / 'data'}"]
    capsys.readouterr()  # the fixture's progress bars, when it built the model
    assert evaluate_launcher().main(argv) == 2
    assert "give a config with a model section" in capsys.readouterr().err

"""launch/sft.py on fixture conversations: stage 1, an interrupted run resumed, stage 2 from stage 1's model,
and bad input refused in one line before any model is built."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rft.data.conversations import conversations_to_dataset
from rft.models.loading import load_policy
from rft.prompts import episodes
from rft.trainers.sft_data import load_sft_dataset

ROOT = Path(__file__).resolve().parents[2]


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sft_launcher = load_module("sft_launcher", ROOT / "launch" / "sft.py")
# The conversation builders of the trainer tests (episodes + real tool images on random faces).
conversations = load_module("sft_conversations", ROOT / "tests" / "trainers" / "test_sft.py")


# Two cores shared with other jobs: OpenMP threads spinning against each other slow every step.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sft_data")
    stage1 = conversations_to_dataset([conversations.knowledge_transfer(seed) for seed in range(2)])
    stage2 = conversations_to_dataset([conversations.tool_trajectory(seed) for seed in range(2)])
    broken = stage1.map(
        lambda row: {
            "messages": episodes.messages_to_json(
                [*episodes.first_turn_messages(), {"role": "user", "content": [episodes.IMAGE_PART]}]
            )
        }
    )
    dirs = {"stage1": root / "stage1", "stage2": root / "stage2", "broken": root / "broken"}
    for name, dataset in (("stage1", stage1), ("stage2", stage2), ("broken", broken)):
        dataset.save_to_disk(str(dirs[name]))
    return dirs


def write_config(tmp_path: Path, model_cache: Path, data_dir: Path) -> Path:
    config = {
        "run": {"name": "sft_test", "output_dir": str(tmp_path / "runs"), "seed": 0},
        "model": {"tiny_preset": "tiny", "arch": "qwen2_5_vl", "cache_dir": str(model_cache)},
        "data": {"protocol": "synth_cross_domain"},  # unused by SFT; the section is required
        "sft": {
            "stage": 1,
            "data_dir": str(data_dir),
            "lora_rank": 4,
            "learning_rate": 5e-3,
            "lr_scheduler_type": "constant",
            "per_device_train_batch_size": 1,
            "max_steps": 2,
            "save_steps": 1,
            "logging_steps": 1,
        },
    }
    path = tmp_path / "sft_test.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def step_losses(stage_dir: Path) -> dict[int, float]:
    log = json.loads((stage_dir / "train_log.json").read_text())
    return {entry["step"]: entry["loss"] for entry in log if "loss" in entry}


def scalar_tags(tensorboard_dir: Path) -> set[str]:
    events = EventAccumulator(str(tensorboard_dir))
    events.Reload()
    return set(events.Tags()["scalars"])


def test_stage_one_resume_and_stage_two_write_loadable_models(tmp_path, model_cache, data_dirs, capsys):
    config = write_config(tmp_path, model_cache, data_dirs["stage1"])
    stage1 = tmp_path / "runs" / "sft_test" / "sft_stage1"
    assert sft_launcher.main(["--config", str(config), "--stage", "1"]) == 0
    assert f"model: {stage1 / 'model'}" in capsys.readouterr().out
    uninterrupted = step_losses(stage1)
    assert sorted(uninterrupted) == [1, 2]
    assert yaml.safe_load((stage1 / "config.yaml").read_text())["sft"]["stage"] == 1
    assert {"train/loss", "train/nll_first_round"} <= scalar_tags(stage1 / "tensorboard")
    model, _ = load_policy(stage1 / "model")
    assert not any("lora" in name for name, _ in model.named_parameters())  # merged, not an adapter

    # A fresh start over the finished run is refused in one line and leaves it as it was.
    capsys.readouterr()
    assert sft_launcher.main(["--config", str(config), "--stage", "1"]) == 2
    error = capsys.readouterr().err
    assert "--resume" in error and "--overwrite" in error and error.count("\n") == 1
    assert (stage1 / "checkpoints" / "checkpoint-2").is_dir() and (stage1 / "model").is_dir()

    # A crash after checkpoint-1: its later checkpoint and outputs never happened.
    shutil.rmtree(stage1 / "checkpoints" / "checkpoint-2")
    shutil.rmtree(stage1 / "model")
    (stage1 / "train_log.json").unlink()
    assert sft_launcher.main(["--config", str(config), "--stage", "1", "--resume"]) == 0
    assert step_losses(stage1)[2] == pytest.approx(uninterrupted[2], abs=1e-5)
    load_policy(stage1 / "model")

    stage2 = tmp_path / "runs" / "sft_test" / "sft_stage2"
    overrides = [
        f"sft.data_dir={data_dirs['stage2']}",
        f"model.path={stage1 / 'model'}",
        "model.tiny_preset=null",
    ]
    assert sft_launcher.main(["--config", str(config), "--stage", "2", *overrides]) == 0
    assert {"train/nll_first_round", "train/nll_later_rounds"} <= scalar_tags(stage2 / "tensorboard")
    stage2_model, processor = load_policy(stage2 / "model")
    assert processor.chat_template and "tool_call" in processor.chat_template
    stage1_weights = dict(load_policy(stage1 / "model")[0].named_parameters())
    moved = [n for n, p in stage2_model.named_parameters() if not torch.equal(p, stage1_weights[n])]
    assert any("language_model" in name for name in moved)

    # --overwrite starts stage 1 afresh: the earlier run's files are gone, the losses are a fresh run's.
    (stage1 / "tensorboard" / "left-by-the-earlier-run").write_text("x")
    assert sft_launcher.main(["--config", str(config), "--stage", "1", "--overwrite"]) == 0
    assert not (stage1 / "tensorboard" / "left-by-the-earlier-run").exists()
    assert step_losses(stage1) == pytest.approx(uninterrupted, abs=1e-5)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["sft.data_dir={missing}"], "does not exist"),
        (["--stage", "1", "sft.data_dir={stage2}"], "stage 1 trains on 'knowledge_transfer'"),
        (["sft.data_dir={broken}"], "has 2 image placeholders but 1 images"),
        (["sft.alpah=0.5"], "did you mean 'alpha'"),
        (["sft.alpha=1.5"], "sft.alpha"),
        (["--resume"], "no complete checkpoint"),
        (["--resume-from", "{missing}"], "is not a checkpoint folder"),
        (["--stage", "2", "sft.data_dir={stage2}"], "launch/sft.py --config <config> --stage 1"),
    ],
)
def test_bad_input_fails_in_one_line_before_any_model_loads(tmp_path, data_dirs, capsys, arguments, named):
    models = tmp_path / "models"
    config = write_config(tmp_path, models, data_dirs["stage1"])
    paths = {"missing": tmp_path / "nowhere", **data_dirs}
    argv = ["--config", str(config), *(a.format(**paths) for a in arguments)]
    assert sft_launcher.main(argv) == 2
    error = capsys.readouterr().err
    assert named in error and error.count("\n") == 1
    assert not models.exists()
    assert not (tmp_path / "runs").exists()


def run_launch(command: list[str], env: dict[str, str]) -> None:
    """Run an `accelerate launch`; on failure the assertion carries the end of its output, which names the
    rank's error (CalledProcessError alone shows only the command)."""
    done = subprocess.run(command, env=env, cwd=ROOT, timeout=600, capture_output=True, text=True)
    assert done.returncode == 0, f"exit {done.returncode}: {(done.stdout + done.stderr)[-6000:]}"


@pytest.mark.slow
def test_two_process_deepspeed_zero2_trains_resumes_and_exports(
    tmp_path, model_cache, data_dirs, shipped_cpu_config
):
    """`accelerate launch` with DeepSpeed ZeRO-2, two CPU processes: the barriers around atomic checkpoints,
    the all-rank metrics and the export run under a real process group."""
    accelerate_config = shipped_cpu_config("zero2")  # deploy/accelerate/zero2_8gpu.yaml on 2 CPUs
    config = write_config(tmp_path, model_cache, data_dirs["stage2"])
    launch = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_config),
        str(ROOT / "launch" / "sft.py"), "--config", str(config), "--stage", "2",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run_launch([*launch, "sft.max_steps=2", "sft.stage2_init_from=model"], env)
    run_launch([*launch, "--resume", "sft.max_steps=3", "sft.stage2_init_from=model"], env)
    stage2 = tmp_path / "runs" / "sft_test" / "sft_stage2"
    assert sorted(step_losses(stage2)) == [1, 2, 3]
    assert (stage2 / "checkpoints" / "checkpoint-3" / "latest").is_file()  # DeepSpeed's own checkpoint
    load_policy(stage2 / "model")


def test_an_annotation_folder_serves_both_stages(tmp_path, data_dirs):
    root = tmp_path / "annotated"  # the layout `rft annotate --out` writes
    shutil.copytree(data_dirs["stage1"], root / "knowledge_transfer")
    shutil.copytree(data_dirs["stage2"], root / "tool_trajectory")
    assert set(load_sft_dataset(root, 1)["kind"]) == {"knowledge_transfer"}
    assert set(load_sft_dataset(root, 2)["kind"]) == {"tool_trajectory"}

"""launch/demo.py end to end at toy size, and bad configs refused before any model or data is built."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def demo_module():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "launch" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def toy_overrides(tmp_path: Path) -> list[str]:
    return [
        f"run.output_dir={tmp_path / 'runs'}",
        f"data.cache_dir={tmp_path / 'data'}",
        f"model.cache_dir={tmp_path / 'models'}",
        "data.image_size=56",
        "data.synthetic.n_per_domain=40",
        "sft.max_steps=2",
        "sft.stage2_max_steps=2",
        "sft.per_device_train_batch_size=2",
        "grpo.max_steps=1",
        "grpo.num_generations=2",
        "grpo.generation_batch_size=4",
        "grpo.per_device_train_batch_size=4",
        "grpo.gradient_accumulation_steps=1",
        "grpo.max_completion_length=48",
        "eval.max_samples=8",
        "eval.batch_size=8",
    ]


@pytest.mark.slow  # every stage for real at toy size: vLLM in-process, two SFT stages, one GRPO step
def test_demo_runs_every_stage_end_to_end(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "launch" / "demo.py"),
        "--config",
        "demo_cpu",
        *toy_overrides(tmp_path),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    for stage in ("base model", "after SFT", "after GRPO"):
        for answer in ("fast", "final"):
            assert f"[{stage}] target street ({answer} answer): HTER" in done.stdout
    run_dir = tmp_path / "runs" / "demo_cpu"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["data"]["synthetic"]["n_per_domain"] == 40
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["base model", "after SFT", "after GRPO"]
    for stage in metrics.values():
        assert list(stage) == ["street", "studio_in_domain"]
        for report in stage.values():
            for answer in ("fast", "final"):
                overall = report[answer]["overall"]
                assert 0.0 <= overall["hter"] <= 1.0 and 0.0 <= overall["auc"] <= 1.0
    for stage in ("sft_stage1", "sft_stage2", "grpo"):
        assert (run_dir / stage / "model" / "config.json").is_file()
    records = (run_dir / "grpo" / "rollouts" / "step_000001.jsonl").read_text().splitlines()
    assert len(records) == 4 and all(json.loads(line)["images"] for line in records)
    # Each record names its example's attack type and domain (the dashboard's filters).
    assert {json.loads(line)["domain"] for line in records} == {"studio"}
    assert {json.loads(line)["attack_type"] for line in records} <= {"live", "print", "replay"}


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("grpo.lerning_rate=1e-5", "grpo.lerning_rate"),
        ("grpo.num_generations=many", "grpo.num_generations"),
        ("grpo.generation_batch_size=6", "generation_batch_size (6)"),
        ("data.protocol=cefa_to_hqwmca", "data.roots.cefa"),
        ("data.protocol=icm_to_o", "one source selection of one split"),
    ],
)
def test_bad_config_fails_before_any_model_loads(tmp_path, capsys, override, named):
    assert demo_module().main(["--config", "demo_cpu", *toy_overrides(tmp_path), override]) == 2
    error = capsys.readouterr().err
    assert named in error and error.count("\n") == 1
    assert not (tmp_path / "models").exists()
    assert not (tmp_path / "data").exists()

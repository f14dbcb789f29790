"""launch/grpo.py: --help, and every bad input refused in one line before any data is generated or model
loaded. Real GRPO runs (resume, several processes, DeepSpeed) are in test_grpo_distributed.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def grpo_launcher():
    spec = importlib.util.spec_from_file_location("grpo_launcher", ROOT / "launch" / "grpo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_config(tmp_path: Path, **grpo) -> Path:
    config = {
        "run": {"name": "g", "output_dir": str(tmp_path / "runs")},
        "model": {"tiny_preset": "tiny", "cache_dir": str(tmp_path / "models")},
        "data": {"protocol": "synth_cross_domain", "cache_dir": str(tmp_path / "data")},
        "grpo": {"num_generations": 2, "generation_batch_size": 4, "per_device_train_batch_size": 4, **grpo},
        "rollout": {"mode": "server", "token_env": "RFT_TEST_NO_SUCH_TOKEN"},
    }
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (
            ["grpo.init_from=sft_stage2", "rollout.mode=inprocess"],
            "launch/sft.py --config <config> --stage 2",
        ),
        (
            ["grpo.init_from=model", "grpo.coefficients.max_length=100"],
            "max_length does not apply to method dt_grpo",
        ),
        (
            ["grpo.init_from=model", "grpo.coefficients.beta_fast=-1e9", "grpo.lerning_rate=1"],
            "grpo.lerning_rate",
        ),
        (["grpo.init_from=model", "--resume"], "no complete checkpoint"),
        (["grpo.init_from=model"], "$RFT_TEST_NO_SUCH_TOKEN is empty"),
        (
            ["grpo.init_from=model", "rollout.mode=inprocess", "data.protocol=cefa_to_hqwmca"],
            "data.roots.cefa",
        ),
        (["grpo.init_from=model", "grpo.generation_batch_size=3"], "generation_batch_size (3)"),
        (
            [
                "grpo.init_from=model",
                "grpo.per_device_train_batch_size=2",
                "grpo.gradient_accumulation_steps=1",
            ],
            "set it to 2 or null",
        ),
    ],
)
def test_bad_input_fails_in_one_line_before_any_model_or_data(tmp_path, capsys, arguments, named):
    argv = ["--config", str(write_config(tmp_path)), *arguments]
    assert grpo_launcher().main(argv) == 2
    error = capsys.readouterr().err
    assert named in error and error.count("\n") == 1
    assert not (tmp_path / "models").exists()
    assert not (tmp_path / "data").exists()


def test_a_fresh_start_over_an_earlier_run_is_refused(tmp_path, capsys):
    """Its checkpoints would be rotated with the new run's, and a later --resume could continue the old run."""
    earlier = tmp_path / "runs" / "g" / "grpo" / "checkpoints" / "checkpoint-200"
    earlier.mkdir(parents=True)
    argv = ["--config", str(write_config(tmp_path)), "grpo.init_from=model", "rollout.mode=inprocess"]
    assert grpo_launcher().main(argv) == 2
    error = capsys.readouterr().err
    assert "holds an earlier run (checkpoints)" in error and "--resume" in error and "--overwrite" in error
    assert error.count("\n") == 1
    assert earlier.is_dir()
    assert not (tmp_path / "models").exists() and not (tmp_path / "data").exists()

"""launch/demo.py end to end at toy size, and bad configs refused before any model or data is built."""

from __future__ import annotations

import importlib.util
import json
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
        "data.synthetic.n_per_domain=40",
        "eval.max_samples=16",
        "eval.batch_size=8",
    ]


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    assert demo_module().main(["--config", "demo_cpu", *toy_overrides(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[base model] target street: HTER" in out and "AUC" in out
    run_dir = tmp_path / "runs" / "demo_cpu"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["data"]["synthetic"]["n_per_domain"] == 40
    reports = json.loads((run_dir / "metrics_base.json").read_text())
    assert list(reports) == ["street", "studio_in_domain"]
    for report in reports.values():
        assert 0.0 <= report["overall"]["hter"] <= 1.0 and 0.0 <= report["overall"]["auc"] <= 1.0


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("grpo.lerning_rate=1e-5", "grpo.lerning_rate"),
        ("grpo.num_generations=many", "grpo.num_generations"),
        ("grpo.generation_batch_size=6", "generation_batch_size (6)"),
        ("data.protocol=cefa_to_hqwmca", "data.roots.cefa"),
    ],
)
def test_bad_config_fails_before_any_model_loads(tmp_path, capsys, override, named):
    assert demo_module().main(["--config", "demo_cpu", *toy_overrides(tmp_path), override]) == 2
    error = capsys.readouterr().err
    assert named in error and error.count("\n") == 1
    assert not (tmp_path / "models").exists()
    assert not (tmp_path / "data").exists()


def test_help_describes_the_job(capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo_module().main(["--help"])
    assert exit_info.value.code == 0
    assert "section.key=value" in capsys.readouterr().out

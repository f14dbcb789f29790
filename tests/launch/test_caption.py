"""launch/caption.py end to end on the CPU (templated captions of the synthetic protocol, a tiny Qwen2.5-VL,
two steps, evaluation with the rule judge), --resume, the refusals, and launch/compare.py on the caption run
and a GRPO-style run folder whose policy it scores first."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def launcher(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_launcher", ROOT / "launch" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def overrides(tmp: Path, model_cache: Path) -> list[str]:
    return [
        f"run.output_dir={tmp / 'runs'}",
        f"data.cache_dir={tmp / 'data'}",
        f"model.cache_dir={model_cache}",
        "data.image_size=64",
        "data.synthetic.n_per_domain=20",
        "data.synthetic.workers=1",
        "caption.max_steps=2",
        "caption.save_steps=1",
        "caption.logging_steps=1",
        "caption.max_new_tokens=8",
        "eval.max_samples=6",
    ]


@pytest.fixture(scope="module")
def caption_run(tmp_path_factory, model_cache):
    tmp = tmp_path_factory.mktemp("caption_launch")
    assert launcher("caption").main(["--config", "caption_cpu", *overrides(tmp, model_cache)]) == 0
    return tmp, tmp / "runs" / "caption_cpu" / "caption"


def test_a_run_trains_exports_and_evaluates(caption_run):
    _, out = caption_run
    log = json.loads((out / "train_log.json").read_text())
    assert [e["step"] for e in log if "loss_cls" in e] == [1, 2]
    assert (out / "model" / "vision_cls_head.safetensors").is_file()
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["head"]["settings"]["threshold_mode"] == "dev"
    assert metrics["explanation"]["settings"]["input"] == "decision"
    assert {p.name for p in (out / "eval" / "head").iterdir()} == {
        "dev.csv",
        "street.csv",
        "studio_in_domain.csv",
    }
    assert (ROOT / "runs").exists() is False or not (ROOT / "runs" / "caption_cpu").exists()


def test_resume_continues_and_a_fresh_start_over_a_run_is_refused(caption_run, model_cache, capsys):
    tmp, out = caption_run
    args = ["--config", "caption_cpu", *overrides(tmp, model_cache)]
    assert launcher("caption").main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    first = [e for e in json.loads((out / "train_log.json").read_text()) if "loss_cls" in e]
    # Another seed: a run that restarted instead of resuming would log other steps 1-2 (head init, order).
    assert launcher("caption").main(["--resume", *args, "caption.max_steps=3", "run.seed=1"]) == 0
    log = [e for e in json.loads((out / "train_log.json").read_text()) if "loss_cls" in e]
    assert [e["step"] for e in log] == [1, 2, 3]
    assert log[:2] == first
    assert (out / "checkpoints" / "checkpoint-3").is_dir()


def test_bad_input_is_refused_in_one_line(tmp_path, model_cache, capsys):
    args = ["--config", "caption_cpu", *overrides(tmp_path, model_cache)]
    assert launcher("caption").main([*args, "caption.captions=poems"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "caption.captions" in err
    assert launcher("caption").main([*args, f"caption.data_dir={tmp_path}"]) == 2
    assert "rft annotate" in capsys.readouterr().err


def test_compare_writes_one_table_and_one_roc_plot(caption_run, model_cache, tmp_path):
    _, out = caption_run
    # A GRPO-style run folder without scores: its saved config and exported policy (the tiny base model).
    policy = tmp_path / "dt_grpo_run" / "grpo"
    shutil.copytree(next(model_cache.glob("tiny-qwen2_5_vl-64")), policy / "model")
    config = yaml.safe_load((out / "config.yaml").read_text())
    (policy / "config.yaml").write_text(yaml.safe_dump(config))
    compare_out = tmp_path / "compare"
    code = launcher("compare").main(
        [f"caption={out.parent}", f"dt_grpo={policy.parent}", "--out", str(compare_out), "--max-samples", "6"]
    )
    assert code == 0
    table = (compare_out / "comparison.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| run")]
    assert [row.split(" | ")[0] for row in rows] == ["| caption explanation", "| caption head", "| dt_grpo"]
    assert "APCER" in table and (compare_out / "roc.png").stat().st_size > 0
    assert (compare_out / "scores" / "dt_grpo" / "street.csv").is_file()


def rft_fas_run(tmp_path: Path, caption_out: Path, model_cache: Path, records: list[dict] | None) -> Path:
    """A GRPO run folder of paper 001's method (no fast answer): its saved config, its exported policy and,
    unless `records` is None, its final evaluation's sample records."""
    stage = tmp_path / "rft_fas_run" / "grpo"
    shutil.copytree(next(model_cache.glob("tiny-qwen2_5_vl-64")), stage / "model")
    config = yaml.safe_load((caption_out / "config.yaml").read_text())
    config["grpo"] = {**config.get("grpo", {}), "method": "rft_fas"}
    (stage / "config.yaml").write_text(yaml.safe_dump(config))
    if records is not None:
        (stage / "eval").mkdir()
        lines = "".join(json.dumps(record) + "\n" for record in records)
        (stage / "eval" / "samples_step_000002.jsonl").write_text(lines)
    return stage.parent


def test_compare_scores_a_method_without_fast_answer_by_its_recorded_final_answers(
    caption_run, model_cache, tmp_path
):
    _, out = caption_run
    targets = sorted(csv for csv in (out / "eval" / "head").glob("*.csv") if csv.stem != "dev")
    records = []
    for csv in targets:  # the caption run's target samples, each with a final-answer P(spoof)
        header, *lines = csv.read_text().splitlines()
        for index, line in enumerate(lines):
            row = dict(zip(header.split(","), line.split(","), strict=True))
            keys = ("id", "label", "attack_type", "domain")
            records.append(
                {**{k: row[k] for k in keys}, "scores": {"final": index / len(lines)}, "turns": []}
            )
    run = rft_fas_run(tmp_path, out, model_cache, records)
    compare_out = tmp_path / "compare"
    code = launcher("compare").main([f"caption={out.parent}", f"grpo={run}", "--out", str(compare_out)])
    assert code == 0
    written = (compare_out / "scores" / "grpo" / f"{targets[0].stem}.csv").read_text().splitlines()
    first = records[0]
    assert written[1].startswith(f"{first['id']},{first['scores']['final']},")
    grpo_row = next(
        line for line in (compare_out / "comparison.md").read_text().splitlines() if "| grpo |" in line
    )
    assert grpo_row.split(" | ")[2] == "n/a"  # its evaluation has no dev set


def test_compare_refuses_a_method_without_fast_answer_or_records(caption_run, model_cache, tmp_path, capsys):
    _, out = caption_run
    run = rft_fas_run(tmp_path, out, model_cache, records=None)
    code = launcher("compare").main([f"grpo={run}", "--out", str(tmp_path / "c")])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no fast answer" in error and "samples_step_N.jsonl" in error


@pytest.mark.parametrize(
    "line",
    ["not json", '{"id": "a", "label": "spoof", "attack_type": "print", "domain": "street", "scores": {}}',
     '{"id": "a", "label": "spoof", "attack_type": "print", "domain": "../x", "scores": {"final": 0.5}}'],
    ids=["not_json", "no_final_score", "domain_outside"],
)  # fmt: skip
def test_compare_refuses_a_bad_recorded_sample_in_one_line(caption_run, model_cache, tmp_path, capsys, line):
    _, out = caption_run
    run = rft_fas_run(tmp_path, out, model_cache, records=[])
    (run / "grpo" / "eval" / "samples_step_000002.jsonl").write_text(line + "\n")
    code = launcher("compare").main([f"grpo={run}", "--out", str(tmp_path / "c")])
    assert code == 2
    assert "line 1 of" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "c" / "scores" / "x.csv").exists()


def test_compare_refuses_runs_of_different_protocols(caption_run, tmp_path, capsys):
    _, out = caption_run
    other = tmp_path / "other"
    other.mkdir()
    (other / "siw_mv2.csv").write_text("id,score,label\na,0.1,live\nb,0.9,spoof\n")
    code = launcher("compare").main(
        [f"a={out / 'eval' / 'head'}", f"b={other}", "--out", str(tmp_path / "c")]
    )
    assert code == 2
    assert "one protocol" in capsys.readouterr().err

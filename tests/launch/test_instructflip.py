"""launch/instructflip.py end to end on the CPU with tiny components and the synthetic cross-domain protocol:
a few steps train (finite losses, each term on its own curve, parameters move, FLAN-T5 does not), the model
exports in transformers formats, resume is exact, and the evaluation lands in the common report."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rft.config import load_config
from rft.eval.report import compute_report
from rft.eval.scores_csv import read_scores_csv

ROOT = Path(__file__).resolve().parents[2]
TERMS = ("content", "style", "cls", "cue")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def load_launcher():
    spec = importlib.util.spec_from_file_location(
        "instructflip_launcher", ROOT / "launch" / "instructflip.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


launcher = load_launcher()


@pytest.fixture(scope="module")
def caches(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("instructflip_caches")
    return {"data": root / "data", "models": root / "models"}


def write_config(tmp_path: Path, caches: dict[str, Path], **instructflip) -> Path:
    config = {
        "run": {"name": "instructflip_test", "output_dir": str(tmp_path / "runs"), "seed": 0},
        "data": {
            "protocol": "synth_cross_domain",
            "image_size": 32,
            "cache_dir": str(caches["data"]),
            "synthetic": {"n_per_domain": 20, "workers": 1},
        },
        "instructflip": {
            "tiny": True,
            "cache_dir": str(caches["models"]),
            "num_query_tokens": 3,
            "qformer_layers": 2,
            "qformer_hidden": 32,
            "qformer_heads": 2,
            "cue_size": 4,
            "initial_lr": 1e-4,
            "peak_lr": 1e-3,
            "batch_size": 4,
            "max_steps": 4,
            "save_steps": 2,
            "logging_steps": 1,
            **instructflip,
        },
    }
    path = tmp_path / "instructflip_test.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def stage(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "instructflip_test" / "instructflip"


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path)


def test_trains_logs_every_term_resumes_exactly_and_reports(tmp_path, caches, capsys):
    config = write_config(tmp_path, caches)
    assert launcher.main(["--config", str(config)]) == 0
    out = stage(tmp_path)

    log = json.loads((out / "train_log.json").read_text())
    assert [entry["step"] for entry in log] == [1, 2, 3, 4]
    for entry in log:
        assert all(math.isfinite(entry[f"loss_{term}"]) for term in TERMS) and math.isfinite(entry["loss"])
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {f"train/loss_{term}" for term in TERMS} | {"train/loss", "train/learning_rate"} <= set(
        events.Tags()["scalars"]
    )

    # Parameters moved where they train and stayed where they are frozen.
    components = caches["models"] / "tiny-instructflip-v1"
    start_clip, end_clip = (
        tensors(d / "model.safetensors") for d in (components / "clip", out / "model" / "vision")
    )
    trained = [n for n in start_clip if ".layers.1." in n]
    assert trained and any(not torch.equal(start_clip[n], end_clip[n]) for n in trained)
    assert torch.equal(
        start_clip["embeddings.patch_embedding.weight"], end_clip["embeddings.patch_embedding.weight"]
    )
    start_t5, end_t5 = (tensors(d / "model.safetensors") for d in (components / "t5", out / "model" / "t5"))
    assert all(torch.equal(start_t5[n], end_t5[n]) for n in start_t5)
    first = tensors(out / "checkpoints" / "checkpoint-2" / "trainable.safetensors")
    final = tensors(out / "checkpoints" / "checkpoint-4" / "trainable.safetensors")
    assert any(not torch.equal(first[n], final[n]) for n in ("classifier.weight", "content_queries"))

    # The evaluation: the common report per target domain, recomputable from the per-sample scores CSV.
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"street", "studio_in_domain"}
    for domain, result in metrics.items():
        overall = result["classifier"]["overall"]
        assert {"hter", "auc", "tpr_at_fpr_1pct", "eer"} <= set(overall)
        rows, _ = read_scores_csv(out / "scores" / f"{domain}.csv")
        assert len(rows) == result["n_samples"]
        assert compute_report(rows)["overall"] == overall
    assert (out / "scores" / "dev.csv").is_file()
    assert "target street: HTER" in capsys.readouterr().out

    # Resume: drop the last checkpoint and continue from checkpoint-2; the weights end where they did.
    shutil.rmtree(out / "checkpoints" / "checkpoint-4")
    assert launcher.main(["--config", str(config), "--resume"]) == 0
    resumed = tensors(out / "checkpoints" / "checkpoint-4" / "trainable.safetensors")
    assert set(resumed) == set(final)
    for name in final:
        torch.testing.assert_close(resumed[name], final[name], rtol=1e-5, atol=1e-6)
    resumed_log = json.loads((out / "train_log.json").read_text())
    assert [entry["step"] for entry in resumed_log] == [1, 2, 3, 4]
    assert resumed_log[3]["loss"] == pytest.approx(log[3]["loss"], rel=1e-4)


def test_classification_heads_variant_trains_without_the_llm(tmp_path, caches):
    config = write_config(tmp_path, caches, llm=False, cue=False, max_steps=2)
    assert launcher.main(["--config", str(config)]) == 0
    log = json.loads((stage(tmp_path) / "train_log.json").read_text())
    assert set(log[-1]) >= {"loss_content", "loss_style", "loss_cls"} and "loss_cue" not in log[-1]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--resume"], "no complete checkpoint"),
        (
            ["instructflip.tiny=false", "instructflip.clip_path=/nowhere", "instructflip.t5_path=/nowhere"],
            "instructflip.clip_path",
        ),
        (["instructflip.tiny=false"], "instructflip.clip_path and instructflip.t5_path"),
        (["instructflip.peak_lr=1e-7"], "peak_lr"),
    ],
)
def test_bad_input_fails_in_one_line_before_any_data_or_model(tmp_path, caches, capsys, arguments, named):
    config = write_config(tmp_path, {"data": tmp_path / "data", "models": tmp_path / "models"})
    assert launcher.main(["--config", str(config), *arguments]) == 2
    # One error line (a library's import warning may precede it when pytest's warning capture is off).
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and named in errors[0]
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()


def test_a_config_without_the_section_is_refused(tmp_path, capsys):
    assert launcher.main(["--config", "demo_cpu"]) == 2
    assert "no instructflip section" in capsys.readouterr().err


def test_a_fresh_start_over_an_earlier_run_is_refused(tmp_path, capsys):
    config = write_config(tmp_path, {"data": tmp_path / "data", "models": tmp_path / "models"})
    (stage(tmp_path) / "checkpoints").mkdir(parents=True)
    assert launcher.main(["--config", str(config)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_the_shipped_configs_load():
    cpu = load_config("instructflip_cpu")
    assert cpu.instructflip.tiny and cpu.data.protocol == "synth_cross_domain" and cpu.model is None
    paper = load_config("instructflip_celeba_to_mcio_wcs").instructflip
    assert (paper.initial_lr, paper.peak_lr, paper.weight_decay, paper.batch_size, paper.epochs) == (
        1e-6,
        5e-6,
        1e-6,
        24,
        20,
    )
    assert (paper.lambda_content, paper.lambda_style, paper.lambda_cls, paper.lambda_cue) == (
        0.4,
        0.4,
        0.15,
        0.05,
    )

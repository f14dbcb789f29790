"""Saved experts load back to the same predictions; `rft experts train|evaluate` on a tiny benchmark."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rft.experts import cli
from rft.experts.bank import Expert, ExpertBank, load_expert, save_expert
from rft.experts.model import ExpertArchitecture, ExpertCNN


def _random_expert(tool: str = "FFTTool") -> Expert:
    architecture = ExpertArchitecture(input_size=32, channels=(4, 8), hidden=8)
    return Expert(tool=tool, architecture=architecture, model=ExpertCNN(architecture).eval(), record={"x": 1})


def test_saved_expert_predicts_the_same_after_loading(tmp_path):
    expert = _random_expert()
    save_expert(tmp_path, expert)
    loaded = load_expert(tmp_path, "FFTTool")
    picture = np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    assert loaded.spoof_probability(picture) == pytest.approx(expert.spoof_probability(picture), abs=1e-6)
    assert 0.0 <= loaded.spoof_probability(picture) <= 1.0
    assert loaded.record == {"x": 1}
    assert not list(tmp_path.glob("*.partial"))


def test_bank_loads_what_is_there_and_has_no_zoom_expert(tmp_path):
    save_expert(tmp_path, _random_expert("LBPTool"))
    bank = ExpertBank.load(tmp_path)
    assert bank.tools == ("LBPTool",)
    picture = np.zeros((32, 32, 3), np.uint8)
    assert bank.spoof_probability("ZoomInTool", picture) is None
    assert bank.spoof_probability("FFTTool", picture) is None
    assert isinstance(bank.spoof_probability("LBPTool", picture), float)


def test_loading_reports_missing_and_damaged_files_in_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="experts folder not found"):
        ExpertBank.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no expert in"):
        ExpertBank.load(tmp_path)
    save_expert(tmp_path, _random_expert())
    (tmp_path / "FFTTool.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot load the FFTTool expert") as error:
        load_expert(tmp_path, "FFTTool")
    assert "\n" not in str(error.value)


def test_cli_trains_evaluates_and_records_the_figures(tiny_benchmark, tmp_path, capsys):
    out = tmp_path / "experts"
    common = [
        "--data",
        str(tiny_benchmark),
        "--tools",
        "FFTTool",
        "LBPTool",
        "--quiet",
        "--cache-dir",
        str(tmp_path / "c"),
    ]
    code = cli.main(
        ["train", *common, "--out", str(out), "--epochs", "1", "--input-size", "32", "--channels", "4", "8"]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["tools"]) == {"FFTTool", "LBPTool"}
    figures = report["tools"]["FFTTool"]
    assert {"overall", "live", "per_attack", "per_domain"} <= set(figures)
    assert set(figures["per_attack"]) <= {
        "print",
        "replay",
        "mask_paper",
        "mask_rigid",
        "mask_silicone",
        "partial_eye",
        "partial_paperglasses",
        "partial_mouth",
    }
    assert report["acceptance"]["targets"].keys() == {"FFTTool", "LBPTool"}
    record = json.loads((out / "FFTTool.json").read_text())["record"]
    assert record["held_out_subjects"] is True and len(record["history"]) == 1
    assert "FFTTool" in capsys.readouterr().out
    assert list((tmp_path / "c").glob("FFTTool-train-*.npz"))  # the cache was filled

    code = cli.main(["evaluate", *common, "--experts", str(out), "--split", "dev"])
    assert code == 0
    evaluated = json.loads((out / "report-dev.json").read_text())
    assert evaluated["split"] == "dev" and set(evaluated["tools"]) == {"FFTTool", "LBPTool"}


def test_cli_errors_are_one_line(tmp_path, tiny_benchmark, capsys):
    assert (
        cli.main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    )
    assert (
        capsys.readouterr().err.strip()
        == f"rft experts: error: dataset folder not found: {tmp_path / 'missing'}"
    )


def test_a_corrupt_image_is_named_in_a_one_line_error(tiny_benchmark, tmp_path, capsys):
    import datasets

    from rft.data.schema import load_dataset_dir, save_dataset

    source = load_dataset_dir(tiny_benchmark).cast_column("image", datasets.Image(decode=False))
    broken_id = next(row["id"] for row in source if row["split"] == "train")

    def corrupt(row):
        if row["id"] == broken_id:
            row["image"] = {"bytes": b"not an image", "path": None}
        return row

    broken = source.map(corrupt).cast_column("image", datasets.Image())
    data = save_dataset(broken, tmp_path / "broken")
    args = ["train", "--data", str(data), "--out", str(tmp_path / "o"), "--tools", "FFTTool", "--no-cache"]
    assert cli.main([*args, "--quiet", "--epochs", "1", "--input-size", "32", "--channels", "4", "8"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after the `datasets` map progress bar
    assert error.startswith(f"rft experts: error: sample {broken_id}: cannot read its image (")


def test_cli_train_refuses_a_folder_it_did_not_make_and_leaves_it_untouched(tiny_benchmark, tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "report.json").write_text("my own report")
    argv = ["train", "--data", str(tiny_benchmark), "--out", str(foreign), "--tools", "FFTTool", "--no-cache"]
    assert cli.main([*argv, "--epochs", "1", "--input-size", "32", "--channels", "4", "8", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"rft experts: error: --out {foreign}: folder exists and was not made by rft experts; "
        "choose a new folder"
    )
    assert [p.name for p in foreign.iterdir()] == ["report.json"]
    assert (foreign / "report.json").read_text() == "my own report"

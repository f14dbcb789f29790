import json

from rft.cli import main as rft_main


def test_rft_import_writes_the_dataset_and_prints_the_summary(tmp_path, media, capsys):
    media.image(tmp_path / "data" / "real" / "a.png")
    media.image(tmp_path / "data" / "fake" / "replay" / "b.png")
    argv = [
        "import",
        "siw",
        "--root",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    assert rft_main([*argv, "--image-size", "96", "--fallback", "error"]) == 0
    summary = json.loads((tmp_path / "out" / "import_summary.json").read_text())
    assert summary["samples"] == 2 and summary["options"] == {
        "frames_per_video": 2,
        "image_size": 96,
        "fallback": "error",
        "margin": 0.2,
    }
    printed = capsys.readouterr().out
    assert "no importer for 'siw'" in printed and "siw: 2 samples from 2 sources" in printed


def test_rft_import_fails_with_one_line_naming_the_bad_root(tmp_path, capsys):
    argv = [
        "import",
        "cefa",
        "--root",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    assert rft_main(argv) == 1
    assert (
        capsys.readouterr().err.strip() == f"rft import: cefa: root {tmp_path / 'missing'} is not a folder; "
        "point it at the released dataset"
    )


def test_rft_import_rejects_bad_options_by_their_flag(tmp_path, capsys):
    argv = [
        "import",
        "cefa",
        "--root",
        str(tmp_path),
        "--out",
        str(tmp_path / "out"),
        "--frames-per-video",
        "0",
    ]
    assert rft_main(argv) == 2
    assert capsys.readouterr().err.startswith("rft import: --frames-per-video: Input should be greater than")


def test_rft_import_suggests_a_close_importer_name_and_rejects_odd_names(tmp_path, capsys):
    argv = ["--root", str(tmp_path), "--out", str(tmp_path / "out"), "--no-progress"]
    assert rft_main(["import", "celeba_spoff", *argv]) == 1  # read as a folder, which it is not
    captured = capsys.readouterr()
    assert "no importer for 'celeba_spoff' (did you mean 'celeba_spoof'?)" in captured.out
    assert "neither real/ nor fake/" in captured.err
    assert rft_main(["import", "Rose Youtu", *argv]) == 2
    assert "dataset name 'Rose Youtu' must be lower-case" in capsys.readouterr().err


def test_rft_import_refuses_a_folder_it_did_not_make_and_leaves_it_untouched(tmp_path, media, capsys):
    media.image(tmp_path / "data" / "real" / "a.png")
    foreign = tmp_path / "mine"
    (foreign / "sub").mkdir(parents=True)
    (foreign / "notes.txt").write_text("keep me")
    argv = ["import", "siw", "--root", str(tmp_path / "data"), "--out", str(foreign), "--no-progress"]
    assert rft_main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"rft import: --out {foreign}: folder exists and was not made by rft import; choose a new folder"
    )
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt", "sub"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "mine"]


def test_rft_import_out_dot_dot_leaves_the_parent_folder_alone(tmp_path, media, monkeypatch, capsys):
    media.image(tmp_path / "data" / "real" / "a.png")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    assert rft_main(["import", "siw", "--root", "../data", "--out", "..", "--no-progress"]) == 2
    assert "--out ..: folder exists and was not made by rft import" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "work"]
    assert (tmp_path / "data" / "real" / "a.png").is_file()

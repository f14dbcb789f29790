"""Output folders: only a new, empty or own folder is written, replaced atomically, nothing else touched."""

from __future__ import annotations

import pytest

from rft.outputs import (
    MARKER,
    OutputDirError,
    claim_output_dir,
    made_by,
    replace_output_dir,
    replaced_atomically,
    write_json,
    write_text_atomically,
)


def write_file(staging):
    (staging / "data.txt").write_text("new")
    return "result"


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_new_or_empty_folder_is_written_and_marked(tmp_path):
    assert replace_output_dir(tmp_path / "new" / "out", "cmd", write_file) == "result"
    assert (
        names(tmp_path / "new" / "out") == [MARKER, "data.txt"] and made_by(tmp_path / "new" / "out") == "cmd"
    )
    (tmp_path / "empty").mkdir()
    replace_output_dir(tmp_path / "empty", "cmd", write_file)
    assert made_by(tmp_path / "empty") == "cmd"
    assert names(tmp_path) == ["empty", "new"]  # no staging or old folder left beside them


def test_its_own_folder_is_replaced_and_anothers_refused_untouched(tmp_path):
    out = tmp_path / "out"
    replace_output_dir(out, "cmd", write_file)
    (out / "stale.txt").write_text("old")
    replace_output_dir(out, "cmd", write_file)
    assert names(out) == [MARKER, "data.txt"]
    with pytest.raises(OutputDirError) as error:
        replace_output_dir(out, "other", write_file)
    assert str(error.value) == f"{out}: folder was made by cmd, not other; choose a new folder"
    with pytest.raises(OutputDirError, match="folder was made by cmd, not other"):
        claim_output_dir(out, "other")
    assert made_by(out) == "cmd"


def test_a_failed_write_leaves_the_folder_as_it_was_and_no_staging(tmp_path):
    out = tmp_path / "out"
    replace_output_dir(out, "cmd", write_file)

    def crash(staging):
        (staging / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_output_dir(out, "cmd", crash)
    assert names(out) == [MARKER, "data.txt"] and names(tmp_path) == ["out"]


def test_a_file_a_foreign_folder_and_a_wrong_marker_are_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputDirError, match="exists and is not a folder"):
        claim_output_dir(tmp_path / "file", "cmd")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / MARKER).write_text("not json")
    with pytest.raises(OutputDirError, match="folder exists and was not made by cmd; choose a new folder"):
        replace_output_dir(foreign, "cmd", write_file)
    assert names(foreign) == [MARKER]


def test_legacy_recognises_an_output_written_before_markers_existed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    replace_output_dir(out, "cmd", write_file, legacy=lambda folder: (folder / "manifest.json").is_file())
    assert names(out) == [MARKER, "data.txt"]


def test_a_link_to_its_own_output_is_replaced_and_its_target_kept(tmp_path):
    real = tmp_path / "real"
    replace_output_dir(real, "cmd", write_file)
    link = tmp_path / "link"
    link.symlink_to(real)
    replace_output_dir(link, "cmd", write_file)
    assert not link.is_symlink() and names(link) == [MARKER, "data.txt"]
    assert names(real) == [MARKER, "data.txt"]


def test_claiming_keeps_what_is_in_its_own_folder(tmp_path):
    out = claim_output_dir(tmp_path / "out", "cmd")
    (out / "a.txt").write_text("a")
    assert claim_output_dir(out, "cmd") == out and names(out) == [MARKER, "a.txt"]


def test_a_file_is_replaced_whole_and_its_folder_created(tmp_path):
    target = tmp_path / "new" / "metrics.json"
    write_json(target, {"auc": 0.5})
    assert target.read_text() == '{\n  "auc": 0.5\n}\n'
    write_text_atomically(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_a_failed_file_write_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk"), replaced_atomically(target) as handle:
        handle.write("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


@pytest.mark.parametrize("durable", [False, True])
def test_only_a_durable_write_syncs_to_disk(tmp_path, monkeypatch, durable):
    """The per-step records and images of a run skip the fsync; a trained expert's files pay for it."""
    synced = []
    monkeypatch.setattr("rft.outputs.os.fsync", synced.append)
    write_json(tmp_path / "a.json", [1], durable=durable)
    assert bool(synced) == durable and (tmp_path / "a.json").read_text() == "[\n  1\n]\n"

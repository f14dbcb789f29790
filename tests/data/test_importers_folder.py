import pytest


@pytest.fixture
def folder_root(tmp_path, media):
    root = tmp_path / "rose_youtu"
    media.image(root / "real" / "a.png")
    media.video(root / "real" / "clips" / "b.mp4")
    media.image(root / "fake" / "print" / "c.png")
    media.image(root / "fake" / "d.png")
    media.image(root / "fake" / "unicorn" / "e.png")
    media.corrupt(root / "fake" / "print" / "broken.jpg")
    return root


def test_folder_importer_reads_real_and_typed_fake_folders(folder_root, run_importer):
    result = run_importer("rose_youtu", folder_root)
    sources = {source: rows[0]["spoof_type"] for source, rows in result.by_source().items()}
    assert sources == {
        "real/a.png": "live",
        "real/clips/b.mp4": "live",
        "fake/print/c.png": "print",
        "fake/d.png": "other",
    }
    assert {row["dataset"] for row in result.rows} == {"rose_youtu"}
    assert {row["split"] for row in result.rows} == {"all"}


def test_folder_importer_reports_unknown_attack_folders_and_corrupt_images(folder_root, run_importer):
    result = run_importer("rose_youtu", folder_root)
    unknown = result.issue("fake/unicorn")
    assert (
        "unknown attack folder 'unicorn': rename it to one of" in unknown.problem
        and "1 files" in unknown.problem
    )
    assert "cannot decode image" in result.issue("broken.jpg").problem
    assert result.summary.rejected == 2 and result.summary.samples == 5


def test_folder_importer_takes_splits_from_split_folders(tmp_path, media, run_importer):
    media.image(tmp_path / "hifimask" / "train" / "real" / "a.png")
    media.image(tmp_path / "hifimask" / "Test" / "fake" / "mask_3d" / "b.png")
    result = run_importer("hifimask", tmp_path / "hifimask")
    assert result.summary.samples_per_split == {"train": 1, "test": 1}
    assert result.first("Test/fake/mask_3d/b.png")["spoof_type"] == "mask_3d"

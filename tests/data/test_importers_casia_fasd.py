import json

import pytest


@pytest.fixture
def casia_root(tmp_path, media):
    root = tmp_path / "CASIA-FASD"
    for name in ("1", "HR_2", "5", "8"):
        media.video(root / "train_release" / "1" / f"{name}.avi")
    media.video(root / "test_release" / "21" / "HR_1.avi")
    media.video(root / "train_release" / "1" / "9.avi")  # no such video in the release
    media.corrupt(root / "test_release" / "21" / "HR_4.avi")
    return root


def test_casia_fasd_maps_names_to_attacks_quality_and_splits(casia_root, run_importer):
    result = run_importer("casia_fasd", casia_root)
    expected = {
        "train_release/1/1.avi": ("live", "low", "train", None),
        "train_release/1/HR_2.avi": ("print", "high", "train", "warped_photo"),
        "train_release/1/5.avi": ("print", "low", "train", "cut_photo"),
        "train_release/1/8.avi": ("replay", "normal", "train", "video"),
        "test_release/21/HR_1.avi": ("live", "high", "test", None),
    }
    for source, (spoof_type, quality, split, attack) in expected.items():
        assert result.values(source, "spoof_type", "camera_quality", "split") == (spoof_type, quality, split)
        assert json.loads(result.first(source)["meta"]).get("attack") == attack
    assert result.first("test_release/21/HR_1.avi")["subject_id"] == "21"


def test_casia_fasd_rejects_unknown_names_and_corrupt_videos_and_keeps_the_rest(casia_root, run_importer):
    result = run_importer("casia_fasd", casia_root)
    assert "unknown CASIA-FASD video name '9.avi'" in result.issue("train_release/1/9.avi").problem
    assert "cannot open video" in result.issue("test_release/21/HR_4.avi").problem
    assert result.summary.rejected == 2
    assert result.summary.sources == 6 and result.summary.samples == len(result.rows) == 10

import pytest

REAL = "scene01/real/real_client002_android_SD_scene01.mp4"
PRINTED = "scene01/attack/attack_client002_android_SD_printed_photo_scene01.mp4"
IPAD = "scene01/attack/attack_client001_laptop_SD_ipad_video_scene01.mov"
UNLISTED = "scene01/real/real_client009_laptop_SD_scene01.mov"


@pytest.fixture
def msu_root(tmp_path, media):
    root = tmp_path / "MSU-MFSD"
    for name in (REAL, PRINTED, IPAD, UNLISTED):
        media.video(root / name)
    media.lines(root / "train_sub_list.txt", ["002", "3x", "003"])
    media.lines(root / "test_sub_list.txt", ["001", "003"])
    return root


def test_msu_mfsd_splits_by_subject_list_and_maps_attacks(msu_root, run_importer):
    result = run_importer("msu_mfsd", msu_root)
    expected = {
        REAL: ("live", "train", "002"),
        PRINTED: ("print", "train", "002"),
        IPAD: ("replay", "test", "001"),
    }
    for source, values in expected.items():
        assert result.values(source, "spoof_type", "split", "subject_id") == values


def test_msu_mfsd_reports_bad_list_lines_and_unlisted_clients(msu_root, run_importer):
    result = run_importer("msu_mfsd", msu_root)
    assert "expected a client number, got '3x'" in result.issue("train_sub_list.txt", line=2).problem
    assert "client 003 is listed in both" in result.issue("test_sub_list.txt", line=2).problem
    assert "client 9 is in neither" in result.issue(UNLISTED.split("/")[-1]).problem
    assert result.summary.rejected == 3 and result.summary.samples == 6

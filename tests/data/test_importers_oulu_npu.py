import json

import pytest


@pytest.fixture
def oulu_root(tmp_path, media):
    root = tmp_path / "OULU-NPU"
    for name in ("1_1_01_1", "1_1_01_2", "1_1_01_4"):
        media.video(root / "Train_files" / f"{name}.avi")
    media.video(root / "Dev_files" / "2_2_21_1.avi")
    media.video(root / "Test_files" / "6_3_36_5.avi")
    protocol = root / "Protocols" / "Protocol_1"
    media.lines(
        protocol / "Train.txt",
        ["+1,1_1_01_1", "-1,1_1_01_2", "-1,1_1_01_4", "+1 1_1_01_1 oops", "+1,1_1_01_3", "-1,1_1_02_2"],
    )
    media.lines(protocol / "Dev.txt", ["+1,2_2_21_1"])
    media.lines(protocol / "Test.txt", ["-1,6_3_36_5"])
    media.lines(root / "Protocols" / "Protocol_3" / "Train_1.txt", ["+1,1_1_01_1"])
    return root


def test_oulu_npu_imports_listed_videos_with_labels_splits_and_subjects(oulu_root, run_importer):
    result = run_importer("oulu_npu", oulu_root)
    videos = result.by_source()
    assert sorted(videos) == [
        "Dev_files/2_2_21_1.avi",
        "Test_files/6_3_36_5.avi",
        "Train_files/1_1_01_1.avi",
        "Train_files/1_1_01_2.avi",
        "Train_files/1_1_01_4.avi",
    ]
    assert all(len(frames) == 2 for frames in videos.values())  # two frames per video (paper 002)
    live = result.values("Train_files/1_1_01_1.avi", "label", "spoof_type", "split", "subject_id")
    assert live == (0, "live", "train", "01")
    assert result.first("Train_files/1_1_01_2.avi")["spoof_type"] == "print"
    assert result.first("Train_files/1_1_01_4.avi")["spoof_type"] == "replay"
    assert result.first("Dev_files/2_2_21_1.avi")["split"] == "dev"
    assert result.first("Test_files/6_3_36_5.avi")["split"] == "test"
    assert result.summary.samples_per_split == {"train": 6, "dev": 2, "test": 2}
    assert result.summary.face_crops == {"detected": 10}


def test_oulu_npu_reports_bad_lines_and_missing_videos_and_keeps_the_rest(oulu_root, run_importer, tmp_path):
    result = run_importer("oulu_npu", oulu_root)
    malformed = result.issue("Protocol_1/Train.txt", line=4)
    assert "expected '+1," in malformed.problem and "oops" in malformed.problem
    assert "contradicts file type 3" in result.issue("Protocol_1/Train.txt", line=5).problem
    missing = result.issue("Protocol_1/Train.txt", line=6)
    assert "missing file" in missing.problem and "Train_files/1_1_02_2.avi" in missing.problem
    assert result.summary.rejected == 3 and result.summary.duplicates == 1
    assert len(result.rows) == result.summary.samples == 10
    written = json.loads((tmp_path / "out" / "oulu_npu" / "import_summary.json").read_text())
    assert written["rejected"] == 3 and [i["line"] for i in written["issues"]] == [4, 5, 6]

import pytest

REAL = "Training/real_part/CLKJ_AS0137/real.rssdk"
FAKE = "Training/fake_part/CLKJ_AS0137/06_en_b.rssdk"


def surf_line(colour: str, label: int) -> str:
    depth, ir = colour.replace("color", "depth"), colour.replace("color", "ir")
    return f"{colour} {depth} {ir} {label}"


@pytest.fixture
def surf_root(tmp_path, media):
    root = tmp_path / "CASIA-SURF"
    for name in (f"{REAL}/color/31.jpg", f"{FAKE}/color/91.jpg", "Val/0000/000000-color.jpg"):
        media.image(root / name)
    media.lines(
        root / "train_list.txt",
        [
            surf_line(f"{REAL}/color/31.jpg", 1),
            surf_line(f"{FAKE}/color/91.jpg", 0),
            f"{REAL}/color/31.jpg 1",
            surf_line(f"{REAL}/color/45.jpg", 1),
        ],
    )
    media.lines(root / "val_private_list.txt", [surf_line("Val/0000/000000-color.jpg", 0)])
    return root


def test_casia_surf_reads_the_colour_modality_with_list_labels_and_splits(surf_root, run_importer):
    result = run_importer("casia_surf", surf_root)
    expected = {
        f"{REAL}/color/31.jpg": ("live", "train", "CLKJ_AS0137"),
        f"{FAKE}/color/91.jpg": ("print", "train", "CLKJ_AS0137"),
        "Val/0000/000000-color.jpg": ("print", "dev", None),
    }
    for source, values in expected.items():
        assert result.values(source, "spoof_type", "split", "subject_id") == values


def test_casia_surf_reports_malformed_lines_and_missing_images(surf_root, run_importer):
    result = run_importer("casia_surf", surf_root)
    malformed = result.issue("train_list.txt", 3)
    assert "expected '<colour path> <depth path> <ir path> <label 0|1>'" in malformed.problem
    assert "missing file" in result.issue("train_list.txt", 4).problem
    assert result.summary.rejected == 2 and result.summary.samples == 3


@pytest.fixture
def cefa_root(tmp_path, media):
    root = tmp_path / "CeFA"
    for name in ("AF/1_000001_1_1_1", "CA/2_000250_1_1_2", "EA/3_000400_1_2_3", "EA/3_000401_1_1_4"):
        media.frames(root / name / "profile", n_frames=4)
        media.frames(root / name / "depth", n_frames=1)
    media.frames(root / "AF/1_0001_x" / "profile", n_frames=1)
    media.frames(root / "AF/1_000002_1_1_1" / "depth", n_frames=1)  # colour frames missing
    return root


def test_cefa_maps_names_to_attacks_and_subject_ranges_to_splits(cefa_root, run_importer):
    result = run_importer("cefa", cefa_root)
    expected = {
        "AF/1_000001_1_1_1/profile": ("live", "train", "1_000001"),
        "CA/2_000250_1_1_2/profile": ("print", "dev", "2_000250"),
        "EA/3_000400_1_2_3/profile": ("replay", "test", "3_000400"),
        "EA/3_000401_1_1_4/profile": ("mask_3d", "test", "3_000401"),
    }
    for source, values in expected.items():
        assert result.values(source, "spoof_type", "split", "subject_id") == values
    frames = result.by_source()["AF/1_000001_1_1_1/profile"]
    assert [row["frame_index"] for row in frames] == [1, 3]  # two of four frames, evenly spaced
    assert '"race": "AF"' in frames[0]["meta"]


def test_cefa_reports_bad_folder_names_and_missing_colour_frames(cefa_root, run_importer):
    result = run_importer("cefa", cefa_root)
    assert "unexpected CeFA folder name '1_0001_x'" in result.issue("1_0001_x").problem
    assert "missing colour frames folder" in result.issue("1_000002_1_1_1").problem
    assert result.summary.rejected == 2 and result.summary.samples == 8

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rft.data.importers import DatasetImportError, ImportOptions, import_dataset, scanner_for
from rft.data.importers.common import frame_indices, normalize_split, write_samples
from rft.data.importers.folder import scan_folder
from rft.data.schema import Sample, load_dataset_dir


@given(n_frames=st.integers(0, 500), count=st.integers(1, 20))
def test_frame_indices_are_distinct_sorted_and_inside_the_video(n_frames, count):
    indices = frame_indices(n_frames, count)
    assert len(indices) == min(n_frames, count)
    assert indices == sorted(set(indices))
    assert all(0 <= i < n_frames for i in indices)


def test_frame_indices_take_segment_centres():
    assert frame_indices(10, 2) == [2, 7]
    assert frame_indices(100, 4) == [12, 37, 62, 87]


def test_split_spellings_are_normalized_and_unknown_ones_named():
    spellings = {"Train": "train", "devel": "dev", "val": "dev", "Testing": "test"}
    assert {name: normalize_split(name) for name in spellings} == spellings
    with pytest.raises(ValueError, match="unknown split 'holdout'"):
        normalize_split("holdout")


def test_datasets_without_an_importer_use_the_folder_importer():
    assert scanner_for("rose_youtu") is scan_folder


@pytest.fixture
def faceless_root(tmp_path, media):
    root = tmp_path / "mixed"
    media.image(root / "real" / "face.png")
    media.image(root / "fake" / "print" / "blank.png", media.blank())
    return root


@pytest.mark.parametrize(
    ("fallback", "samples", "face_crops", "outcome"),
    [
        ("center", 2, {"detected": 1, "center": 1}, "kept: centre crop"),
        ("box", 2, {"detected": 1, "center": 1}, "kept: centre crop"),  # no dataset box here
        ("error", 1, {"detected": 1, "rejected": 1}, "rejected"),
    ],
)
def test_faceless_images_are_recorded_and_follow_the_fallback(
    faceless_root, run_importer, fallback, samples, face_crops, outcome
):
    result = run_importer("folder", faceless_root, fallback=fallback)
    assert result.summary.samples == samples and result.summary.face_crops == face_crops
    issue = result.issue("blank.png")
    assert issue.problem.startswith("image: no face detected") and issue.outcome == outcome
    assert result.summary.rejected == (outcome == "rejected")


def test_crops_have_the_configured_size(faceless_root, tmp_path):
    import_dataset("folder", faceless_root, tmp_path / "out", ImportOptions(image_size=64), progress=False)
    assert {image.size for image in load_dataset_dir(tmp_path / "out")["image"]} == {(64, 64)}


def test_an_import_without_valid_samples_fails_but_writes_its_summary(tmp_path, media):
    media.corrupt(tmp_path / "broken" / "real" / "a.jpg")
    with pytest.raises(DatasetImportError, match=r"no valid sample under .* 1 rejected"):
        import_dataset("folder", tmp_path / "broken", tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "import_summary.json").is_file()


def test_a_missing_root_is_named(tmp_path):
    with pytest.raises(DatasetImportError, match=r"root .*nowhere is not a folder"):
        import_dataset("oulu_npu", tmp_path / "nowhere", tmp_path / "out", progress=False)


def test_reimporting_replaces_the_dataset_and_leaves_no_temporary_folders(faceless_root, tmp_path, media):
    out = tmp_path / "out"
    import_dataset("folder", faceless_root, out, progress=False)
    (faceless_root / "fake" / "print" / "blank.png").unlink()
    import_dataset("folder", faceless_root, out, progress=False)
    assert len(load_dataset_dir(out)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed", "out"]


def test_samples_are_written_in_chunks_into_one_dataset(tmp_path):
    samples = [
        Sample(id=f"s{i}", image_bytes=b"x", label="live", spoof_type="live", dataset="d", domain="d")
        for i in range(5)
    ]
    assert write_samples(iter(samples), tmp_path / "out", chunk_size=2) == 5
    assert load_dataset_dir(tmp_path / "out")["id"][:] == [f"s{i}" for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]

import json

import pytest

from rft.data.face import square_around
from rft.data.importers.celeba_spoof import parse_box
from rft.data.importers.common import pixel_box


def labels(spoof_type: int, illumination: int = 0, environment: int = 0) -> list[int]:
    """A 44-entry CelebA-Spoof label vector (40 face attributes, then type, illumination, environment, flag)."""
    return [0] * 40 + [spoof_type, illumination, environment, int(spoof_type != 0)]


def write_label_file(path, entries: dict) -> None:
    """One entry per line, as json.dump(indent=...) would lay it out, so entries have line numbers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ",\n".join(f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in entries.items())
    path.write_text("{\n" + body + "\n}\n")


@pytest.fixture
def celeba_root(tmp_path, media):
    root = tmp_path / "CelebA_Spoof"
    images = {
        "Data/train/4980/live/000001.jpg": (media.face(), "10 20 150 150 0.99"),
        "Data/train/4980/spoof/000002.jpg": (media.face(), "10 20 150 150 0.98"),
        "Data/train/4980/spoof/000003.jpg": (media.blank(), "56 56 112 112 0.97"),  # no face: the box is used
        "Data/test/5001/spoof/000004.jpg": (media.face(), "1 2 3"),  # malformed box file
    }
    for key, (rgb, box) in images.items():
        media.image(root / key, rgb)
        media.lines(root / key.replace(".jpg", "_BB.txt"), [box])
    metas = root / "metas" / "intra_test"
    write_label_file(
        metas / "train_label.json",
        {
            "Data/train/4980/live/000001.jpg": labels(0),
            "Data/train/4980/spoof/000002.jpg": labels(1, illumination=2, environment=1),
            "Data/train/4980/spoof/000003.jpg": labels(3),
            "Data/train/4980/spoof/000005.jpg": labels(7),  # not on disk
            "Data/train/4980/spoof/000006.jpg": labels(2)[:43],  # 43 labels
        },
    )
    write_label_file(metas / "test_label.json", {"Data/test/5001/spoof/000004.jpg": labels(8)})
    return root


def test_celeba_spoof_maps_types_attributes_splits_and_subjects(celeba_root, run_importer):
    result = run_importer("celeba_spoof", celeba_root)
    columns = ("spoof_type", "label", "split", "subject_id", "illumination", "environment", "frame_index")
    live = result.values("Data/train/4980/live/000001.jpg", *columns)
    assert live == ("live", 0, "train", "4980", None, None, None)
    photo = result.values("Data/train/4980/spoof/000002.jpg", *columns)
    assert photo == ("print_photo", 1, "train", "4980", "strong", "indoor", None)
    assert result.first("Data/train/4980/spoof/000003.jpg")["spoof_type"] == "print_a4"
    assert result.values("Data/test/5001/spoof/000004.jpg", "spoof_type", "split") == ("replay_pad", "test")


def test_celeba_spoof_box_is_scaled_from_224_to_the_image_and_used_when_no_face_is_found(
    celeba_root, run_importer
):
    box = pixel_box(parse_box(celeba_root / "Data/train/4980/spoof/000003_BB.txt"), (128, 128))
    assert box == (32, 32, 96, 96)  # 56 * 128 / 224 = 32, (56 + 112) * 128 / 224 = 96
    result = run_importer("celeba_spoof", celeba_root)
    faceless = result.first("Data/train/4980/spoof/000003.jpg")
    meta = json.loads(faceless["meta"])
    assert meta["face_crop"] == "box" and meta["crop_region"] == list(square_around(box, 0.2))
    assert result.issue("000003.jpg").outcome == "kept: dataset face box"
    assert result.summary.face_crops == {"detected": 3, "box": 1}


def test_celeba_spoof_reports_bad_entries_with_their_line_and_keeps_the_rest(celeba_root, run_importer):
    result = run_importer("celeba_spoof", celeba_root)
    missing = result.issue("train_label.json", line=5)
    assert "missing file" in missing.problem and "000005.jpg" in missing.problem
    malformed = result.issue("train_label.json", line=6)
    assert "000006.jpg" in malformed.problem and "expected a list of 44 integers" in malformed.problem
    bad_box = result.issue("000004_BB.txt")
    assert "expected 'x y w h score'" in bad_box.problem and bad_box.outcome.startswith("kept")
    assert result.summary.rejected == 2
    assert result.summary.samples == len(result.rows) == 4

"""The shared sample schema: attack families, label consistency, and a round trip through `datasets`."""

import io

import pytest
from PIL import Image
from pydantic import ValidationError

from rft.data.schema import (
    Sample,
    SpoofType,
    attack_category,
    load_dataset_dir,
    samples_to_dataset,
    save_dataset,
)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 80, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("spoof_type", "family"),
    [
        ("live", "live"),
        ("print_a4", "print"),
        ("replay_phone", "replay"),
        ("mannequin", "mask"),
        ("makeup_obfuscation", "makeup"),
        ("wig", "partial"),
        ("other", "other"),
    ],
)
def test_attack_families(spoof_type, family):
    assert attack_category(spoof_type) == family


def test_every_type_has_a_known_family():
    assert {attack_category(t) for t in SpoofType} == {
        "live",
        "print",
        "replay",
        "mask",
        "makeup",
        "partial",
        "other",
    }


def test_label_must_agree_with_spoof_type():
    with pytest.raises(ValidationError, match="contradicts"):
        Sample(id="a", image_bytes=png(), label="live", spoof_type="print", dataset="d", domain="d")


def test_sample_needs_an_image():
    with pytest.raises(ValidationError, match="image_path or image_bytes"):
        Sample(id="a", label="live", spoof_type="live", dataset="d", domain="d")


def test_round_trip_through_a_saved_dataset(tmp_path):
    sample = Sample(
        id="s1",
        image_bytes=png(),
        label="spoof",
        spoof_type="replay_pad",
        dataset="d",
        domain="x",
        face_box=(1, 2, 7, 8),
        trajectory=[{"role": "assistant", "content": "<Spoof>"}],
        meta={"k": 1},
    )
    saved = save_dataset(samples_to_dataset([sample]), tmp_path / "ds")
    row = load_dataset_dir(saved)[0]
    assert row["label"] == 1 and row["attack_category"] == "replay" and row["face_box"] == [1, 2, 7, 8]
    assert row["image"].size == (8, 8)
    assert not (tmp_path / "ds.tmp").exists()

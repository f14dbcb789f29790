import numpy as np
import pytest
import skimage.data

from rft.data.face import (
    FaceSettings,
    NoFaceError,
    crop_face,
    cut_region,
    detect_faces,
    haar_cascade,
    square_around,
)

ASTRONAUT_FACE = (177, 66, 272, 161)  # x=177, y=66, w=h=95 with scale 1.1 and 5 neighbours
BLANK = np.full((200, 300, 3), 90, np.uint8)


def test_the_cascade_ships_with_opencv():
    assert not haar_cascade().empty()


def test_detects_the_astronaut_face():
    assert detect_faces(skimage.data.astronaut(), scale_factor=1.1, min_neighbors=5) == [ASTRONAUT_FACE]


def test_detection_on_a_large_image_is_scaled_back_and_ranks_the_face_first():
    large = np.kron(skimage.data.astronaut(), np.ones((2, 2, 1), np.uint8))  # 1024 x 1024, detected at 640
    faces = detect_faces(large)
    assert len(faces) == 2  # at this scale a larger false positive appears too, with far less support
    assert np.allclose(faces[0], [2 * v for v in ASTRONAUT_FACE], atol=12)


def test_crop_is_a_square_around_the_face_enlarged_by_the_margin():
    crop = crop_face(skimage.data.astronaut(), FaceSettings(image_size=224, margin=0.25))
    assert crop.method == "detected" and crop.image.shape == (224, 224, 3)
    side = round(95 * 1.5)
    assert crop.region[2] - crop.region[0] == crop.region[3] - crop.region[1] == side
    # 0.25 of the face side on each side of it: the face spans the middle two thirds of the crop
    assert np.allclose(crop.face_box, [224 / 6, 224 / 6, 224 * 5 / 6, 224 * 5 / 6], atol=2)


def test_the_crop_size_is_configurable():
    assert crop_face(skimage.data.astronaut(), FaceSettings(image_size=112)).image.shape == (112, 112, 3)


def test_regions_past_the_border_are_padded_black():
    image = np.full((10, 10, 3), 255, np.uint8)
    cut = cut_region(image, (-5, -5, 5, 5))
    assert cut.shape == (10, 10, 3)
    assert cut[:5].max() == 0 and cut[:, :5].max() == 0 and cut[5:, 5:].min() == 255


def test_square_around_keeps_the_centre_and_takes_the_longer_side():
    assert square_around((10, 20, 30, 60), margin=0.0) == (0, 20, 40, 60)


def test_no_face_with_fallback_box_uses_the_dataset_box():
    crop = crop_face(BLANK, FaceSettings(fallback="box"), dataset_box=(100, 50, 200, 150))
    assert crop.method == "box" and crop.region == square_around((100, 50, 200, 150), 0.2)


def test_no_face_and_no_dataset_box_falls_back_to_a_centre_crop():
    for fallback in ("box", "center"):
        crop = crop_face(BLANK, FaceSettings(fallback=fallback))
        assert (crop.method, crop.region, crop.face_box) == ("center", (50, 0, 250, 200), None)


def test_center_fallback_ignores_the_dataset_box():
    assert crop_face(BLANK, FaceSettings(fallback="center"), dataset_box=(0, 0, 50, 50)).method == "center"


def test_no_face_with_fallback_error_raises():
    with pytest.raises(NoFaceError, match=r"no face detected .*fallback 'error'"):
        crop_face(BLANK, FaceSettings(fallback="error"), dataset_box=(0, 0, 50, 50))

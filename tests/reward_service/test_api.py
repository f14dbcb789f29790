"""The wire format's raw images, without a service: encoding round trips and what validation refuses."""

import numpy as np
import pytest
from pydantic import ValidationError

from reward_service.api import RawImage, ToolRequest, encode_image
from reward_service.client import InProcessRewards
from rft.codec import decode_image


def rgb(height: int = 24, width: int = 40) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("image", [rgb(), rgb()[:, ::2], np.asfortranarray(rgb())])  # views and F order too
def test_raw_round_trip_through_json(image):
    request = ToolRequest(name="FFTTool", **encode_image(image, "raw"))
    parsed = ToolRequest.model_validate_json(request.model_dump_json())
    assert parsed.encoding == "raw" and parsed.image_raw.shape == image.shape
    assert np.array_equal(parsed.image_raw.pixels, image)


def test_png_and_raw_carry_the_same_pixels():
    image = rgb()
    png = ToolRequest(name="FFTTool", **encode_image(image, "png"))
    assert png.encoding == "png" and np.array_equal(decode_image(png.image_png), image)


def test_a_grey_image_goes_raw_as_rgb_like_the_tools_see_it():
    grey = rgb()[..., 0]
    raw, png = (
        InProcessRewards(encoding).run_tool("ZoomInTool", grey, {"bbox": [0, 0, 20, 10]})
        for encoding in ("raw", "png")
    )
    assert raw.ok and png.ok and np.array_equal(raw.image, png.image)


def test_pixels_of_a_truncated_payload_are_refused_with_its_type():
    data = RawImage.from_pixels(rgb()).data
    with pytest.raises(ValidationError) as error:
        RawImage.model_validate({"data": data[:-8], "shape": [24, 40, 3]})
    assert [e["type"] for e in error.value.errors()] == ["raw_image_size"]


def test_padding_cannot_hide_a_missing_byte():
    # 8 x 8 x 3 = 192 bytes = 256 base64 characters with no padding; a payload of 191 bytes has the same
    # length once padded ("=" at the end) and must still be refused.
    short = RawImage.from_pixels(rgb(8, 8)).data[:-4] + "AAA="
    with pytest.raises(ValidationError) as error:
        RawImage.model_validate({"data": short, "shape": [8, 8, 3]})
    assert [e["type"] for e in error.value.errors()] == ["raw_image_size"]

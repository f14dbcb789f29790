"""The image codec both services share: what it decodes and what it refuses before decoding (issue #14)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image, ImageFile

from rft.codec import ImageDecodeError, decode_image, decode_pil, encode_png, image_size


def test_png_round_trip() -> None:
    image = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_png(image)), image)
    assert decode_pil(encode_png(image)).size == image_size(encode_png(image)) == (20, 12)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding pixels fails the test: what is refused must be refused from the header."""

    def load(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the codec decoded the pixels of an image it should have refused")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(huge_png: str, no_decoding) -> None:
    assert len(huge_png) < 400_000  # small on the wire, 270 MB decoded
    for decode in (decode_image, image_size):
        with pytest.raises(ImageDecodeError, match="9500x9500 pixels; the limit is 16777216 pixels"):
            decode(huge_png)
    small = encode_png(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ImageDecodeError, match="8x8 pixels; the limit is 63"):
        decode_image(small, max_pixels=63)


def test_bytes_formats_and_garbage_are_refused_with_one_line() -> None:
    with pytest.raises(ImageDecodeError, match="larger than 100 bytes"):
        decode_image(encode_png(np.zeros((64, 64, 3), np.uint8)), max_bytes=100)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="BMP")
    for data in (
        "@@@",
        base64.b64encode(b"not an image").decode(),
        base64.b64encode(buffer.getvalue()).decode(),
    ):
        with pytest.raises(ImageDecodeError, match="not a base64-encoded PNG or JPEG image") as error:
            decode_image(data)
        assert "\n" not in str(error.value)

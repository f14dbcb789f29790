"""The image codec of both services' wire formats: base64 PNG (lossless) in, uint8 RGB arrays out.

One place, so the rollout server and the reward service accept and refuse the same images. An image is
refused from its size in bytes, then from its header's width and height, before any pixel is decoded: a
114 kB PNG can hold 9500x9500 pixels, 270 MB once decoded."""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_IMAGE_BYTES = 16 * 1024 * 1024
# The largest side the tools take (rft.tools.images.MAX_IMAGE_SIDE), squared: 50 MB as RGB.
MAX_IMAGE_PIXELS = 4096 * 4096
FORMATS = ("PNG", "JPEG")


class ImageDecodeError(ValueError):
    """The request's image is not base64 PNG/JPEG data within the limits."""


def encode_png(image: Image.Image | np.ndarray) -> str:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    # Level 1 costs about a third less time than PNG's default and the images stay lossless.
    image.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def base64_length(raw_bytes: int) -> int:
    """Characters of the base64 text of `raw_bytes` bytes."""
    return 4 * -(-raw_bytes // 3)


def image_size(
    data: str, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS
) -> tuple[int, int]:
    """(width, height) of a base64 image, read from its header only; ImageDecodeError as `decode_image`."""
    with _opened(data, max_bytes, max_pixels) as image:
        return image.size


def decode_image(
    data: str, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS
) -> np.ndarray:
    """Base64 image -> uint8 RGB array. Raises ImageDecodeError with one line on anything else, and on an
    image over `max_bytes` bytes or `max_pixels` pixels, refused before its pixels are decoded."""
    with _opened(data, max_bytes, max_pixels) as image:
        try:
            return np.asarray(image.convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise ImageDecodeError(f"the image does not decode ({type(error).__name__})") from None


def decode_pil(
    data: str, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS
) -> Image.Image:
    """Base64 image -> RGB PIL image (ImageDecodeError as `decode_image`)."""
    return Image.fromarray(decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels))


def _opened(data: str, max_bytes: int, max_pixels: int) -> Image.Image:
    """The image of `data` opened lazily (PIL has read its header, not its pixels), its size checked."""
    if len(data) > base64_length(max_bytes):
        raise ImageDecodeError(f"the image is larger than {max_bytes} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
        # PIL's own decompression-bomb check (DecompressionBombError) runs here, on the header's size.
        image = Image.open(io.BytesIO(raw), formats=FORMATS)
    except (
        binascii.Error,
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
    ) as error:
        raise ImageDecodeError(f"not a base64-encoded PNG or JPEG image ({type(error).__name__})") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageDecodeError(f"the image is {width}x{height} pixels; the limit is {max_pixels} pixels")
    return image

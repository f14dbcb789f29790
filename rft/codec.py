"""The image codec of both services' wire formats: base64 PNG (lossless) in, uint8 RGB arrays out.

One place, so the rollout server and the reward service accept and refuse the same images."""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_IMAGE_BYTES = 16 * 1024 * 1024


class ImageDecodeError(ValueError):
    """The request's image is not base64 PNG/JPEG data."""


def encode_png(image: Image.Image | np.ndarray) -> str:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    # Level 1 costs about a third less time than PNG's default and the images stay lossless.
    image.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_image(data: str) -> np.ndarray:
    """Base64 image -> uint8 RGB array. Raises ImageDecodeError with one line on anything else."""
    if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise ImageDecodeError(f"image is larger than {MAX_IMAGE_BYTES // 2**20} MiB")
    try:
        raw = base64.b64decode(data, validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            return np.asarray(image.convert("RGB"))
    except (
        binascii.Error,
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
    ) as error:
        raise ImageDecodeError(f"image_png is not a base64-encoded image ({type(error).__name__})") from None


def decode_pil(data: str) -> Image.Image:
    """Base64 image -> RGB PIL image (ImageDecodeError as `decode_image`)."""
    return Image.fromarray(decode_image(data))

"""Checking the image a tool is given, and the conversions every tool shares."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from rft.tools.errors import ToolInputError

# Below 8 pixels no operator has a neighbourhood to work with; above 4096 a single call would hold a
# reward-service worker for seconds (the tools see 224 or 448 pixel face crops).
MIN_IMAGE_SIDE = 8
MAX_IMAGE_SIDE = 4096


def as_rgb_array(image: object, tool: str) -> np.ndarray:
    """`image` (a PIL image, or a uint8 numpy array of shape (H, W), (H, W, 1) or (H, W, 3)) as a
    C-contiguous uint8 RGB array of shape (H, W, 3). Raises ToolInputError naming `tool` otherwise."""
    if isinstance(image, Image.Image):
        array = _pil_to_array(image, tool)
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise ToolInputError(tool, f"image must be a PIL image or a numpy array, got {type(image).__name__}")
    _check_dtype(array, tool)
    _check_shape(array, tool)
    _check_size(array.shape[:2], tool)
    return _to_rgb(array)


def _pil_to_array(image: Image.Image, tool: str) -> np.ndarray:
    width, height = image.size
    _check_size((height, width), tool)  # before converting, so an enormous image is never decoded
    try:
        return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:  # truncated or unreadable files surface only here (lazy decode)
        raise ToolInputError(tool, f"cannot read the PIL image: {error}") from None


def _check_dtype(array: np.ndarray, tool: str) -> None:
    # Floats are refused rather than guessed at: [0, 1] and [0, 255] floats look alike, and NaN has no pixel.
    if array.dtype != np.uint8:
        raise ToolInputError(tool, f"image must have dtype uint8, got {array.dtype}")


def _check_shape(array: np.ndarray, tool: str) -> None:
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3)):
        return
    raise ToolInputError(tool, f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got {array.shape}")


def _check_size(height_width: tuple[int, ...], tool: str) -> None:
    height, width = height_width
    if min(height, width) < MIN_IMAGE_SIDE or max(height, width) > MAX_IMAGE_SIDE:
        raise ToolInputError(
            tool,
            f"image is {height}x{width}; each side must be between {MIN_IMAGE_SIDE} and "
            f"{MAX_IMAGE_SIDE} pixels",
        )


def _to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    return gray_to_rgb(np.ascontiguousarray(array.reshape(array.shape[:2])))


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luma (ITU-R BT.601 weights) of an RGB image, uint8."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """A uint8 grey image repeated into three channels: VLM processors expect RGB."""
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


def stretch_to_uint8(values: np.ndarray, min_span: float = 0.0) -> np.ndarray:
    """`values` mapped linearly so that their minimum is 0 and their maximum 255. Values spanning less than
    `min_span` are scaled as if they spanned `min_span`, so rounding noise on a flat input stays dark
    instead of being stretched to full contrast; all zeros if the values are constant."""
    low, high = float(values.min()), float(values.max())
    span = max(high - low, min_span)
    if span <= 0.0:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (255.0 / span)).astype(np.uint8)


def magnitude_to_uint8(magnitudes: np.ndarray, min_peak: float = 0.0) -> np.ndarray:
    """Non-negative `magnitudes` scaled so that the largest (or `min_peak`, if larger) is 255. Zero stays
    black, unlike a min-max stretch, so "no response" looks the same in every picture."""
    peak = max(float(magnitudes.max()), min_peak)
    if peak <= 0.0:
        return np.zeros(magnitudes.shape, dtype=np.uint8)
    return np.rint(magnitudes * (255.0 / peak)).astype(np.uint8)

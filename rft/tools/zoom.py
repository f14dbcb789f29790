"""ZoomInTool: a crop of the image enlarged to the model's input size.

Paper 003, section 3.1.1: "This tool takes a bounding box input to focus on facial regions for fine-grained
local analysis." Print dots, screen pixel grids and moire are often finer than what survives the vision
encoder's patching of a whole 224x224 face; enlarged, they span several patches.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from rft.tools.arguments import ZoomInArguments
from rft.tools.errors import ToolArgumentError

TOOL = "ZoomInTool"
# The face crops of paper 003 are 224x224 (section 4.1), which is also what the model sees of a tool result.
DEFAULT_OUTPUT_SIZE = 224

Box = tuple[int, int, int, int]  # left, top, right, bottom: the pixel slice [top:bottom, left:right]


def crop_box(arguments: ZoomInArguments, width: int, height: int) -> Box:
    """The pixels the box covers, clamped to a `width` x `height` image.

    Coordinates are pixel edges: pixel (row r, column c) spans [c, c + 1) x [r, r + 1), so [0, 0, W, H]
    is the whole image, and a fractional box takes every pixel it overlaps. Normalised coordinates are
    multiplied by the width and height first. A box with no area left inside the image is an argument error.
    """
    scale_x, scale_y = (width, height) if arguments.coordinates == "normalized" else (1, 1)
    x0, y0, x1, y1 = arguments.bbox
    left, right = _clamp(x0 * scale_x, 0, width), _clamp(x1 * scale_x, 0, width)
    top, bottom = _clamp(y0 * scale_y, 0, height), _clamp(y1 * scale_y, 0, height)
    if right <= left or bottom <= top:
        raise ToolArgumentError(
            TOOL,
            f"bbox [{x0:g}, {y0:g}, {x1:g}, {y1:g}] ({arguments.coordinates}) lies outside the "
            f"{width}x{height} image",
        )
    return math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def zoom_in(
    image: np.ndarray, arguments: ZoomInArguments, output_size: int = DEFAULT_OUTPUT_SIZE
) -> np.ndarray:
    """The region `arguments.bbox` of an RGB uint8 image, resized to `output_size` x `output_size`.

    The crop is stretched to a square rather than letterboxed: paper 003 tells the model to ignore black
    borders, and every VLM processor accepts a square of the input size, whereas a thin box kept at its
    aspect ratio can fall below a processor's minimum side.
    """
    left, top, right, bottom = crop_box(arguments, width=image.shape[1], height=image.shape[0])
    crop = image[top:bottom, left:right]
    return cv2.resize(crop, (output_size, output_size), interpolation=resize_interpolation(crop, output_size))


def resize_interpolation(crop: np.ndarray, output_size: int) -> int:
    """Area averaging when the crop only shrinks (it does not alias); bicubic when it grows, which keeps
    fine texture sharper than bilinear."""
    shrinks = min(crop.shape[0], crop.shape[1]) >= output_size
    return cv2.INTER_AREA if shrinks else cv2.INTER_CUBIC

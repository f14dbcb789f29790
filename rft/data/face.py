"""Face preprocessing: find the face, cut a square around it with some context, resize.

Detection uses OpenCV's frontal-face Haar cascade, whose weights ship inside opencv-python-headless (< 5), so
nothing is downloaded. When no face is found the caller chooses a fallback: the dataset's own face box
(`box`), a centre crop (`center`) or rejecting the image (`error`). `crop_face` never drops an image silently:
it either returns a `FaceCrop` that says which path produced it or raises `NoFaceError`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels
FallbackMode = Literal["box", "center", "error"]
CropMethod = Literal["detected", "box", "center"]

CASCADE_FILE = "haarcascade_frontalface_default.xml"
# Haar cost grows with the pixel count while FAS faces fill much of the frame, so detection runs on a copy
# whose longer side is at most this; the box is scaled back to the full image.
DETECTION_MAX_SIDE = 640


class NoFaceError(ValueError):
    """No face was detected and the fallback does not allow another crop."""


@dataclass(frozen=True)
class FaceSettings:
    image_size: int = 224
    margin: float = 0.2  # fraction of the face box side added on every side of the crop
    fallback: FallbackMode = "box"
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face_fraction: float = 0.1  # smallest face searched for, relative to the image's shorter side


@dataclass(frozen=True)
class FaceCrop:
    image: np.ndarray  # RGB, image_size x image_size
    method: CropMethod
    region: Box  # the square cut from the source image (may reach past its border: padded black)
    face_box: Box | None  # the face inside `image`; None for a centre crop, where it is unknown


@functools.cache
def haar_cascade() -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_FILE)
    if cascade.empty():
        raise RuntimeError(
            f"cannot load {CASCADE_FILE} from {cv2.data.haarcascades}; reinstall opencv-python-headless<5"
        )
    return cascade


def detect_faces(
    rgb: np.ndarray, scale_factor: float = 1.1, min_neighbors: int = 5, min_face_fraction: float = 0.1
) -> list[Box]:
    """Frontal faces in an RGB image, the most certain first: by the number of overlapping raw detections,
    which separates a face from large false positives (shoulders, textures) better than the box size."""
    height, width = rgb.shape[:2]
    scale = min(1.0, DETECTION_MAX_SIDE / max(height, width))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    min_side = max(1, int(min(gray.shape) * min_face_fraction))
    found, support = haar_cascade().detectMultiScale2(
        gray, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_side, min_side)
    )
    ranked = sorted(zip(found, support, strict=True), key=lambda pair: (pair[1], pair[0][2]), reverse=True)
    return [tuple(round(v / scale) for v in (x, y, x + w, y + h)) for (x, y, w, h), _ in ranked]


def square_around(box: Box, margin: float) -> Box:
    """The square centred on `box`, its side the box's longer side enlarged by `margin` on every side."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = round(cx - side / 2), round(cy - side / 2)
    return left, top, left + round(side), top + round(side)


def cut_region(rgb: np.ndarray, region: Box) -> np.ndarray:
    """Pixels of `region`; parts outside the image are black, so the face stays centred (paper 003's prompts
    tell the model to ignore such black borders)."""
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = region
    inside = rgb[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    pads = (max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0))
    return cv2.copyMakeBorder(inside, *pads, borderType=cv2.BORDER_CONSTANT, value=(0, 0, 0))


def center_region(rgb: np.ndarray) -> Box:
    height, width = rgb.shape[:2]
    side = min(height, width)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def box_in_region(box: Box, region: Box, size: int) -> Box:
    """`box` in the pixel coordinates of `region` resized to size x size."""
    scale = size / (region[2] - region[0])
    x0, y0 = region[:2]
    return tuple(round((v - origin) * scale) for v, origin in zip(box, (x0, y0, x0, y0), strict=True))


def crop_region(rgb: np.ndarray, region: Box, size: int) -> np.ndarray:
    return cv2.resize(cut_region(rgb, region), (size, size), interpolation=cv2.INTER_AREA)


def crop_around(rgb: np.ndarray, box: Box, method: CropMethod, settings: FaceSettings) -> FaceCrop:
    region = square_around(box, settings.margin)
    image = crop_region(rgb, region, settings.image_size)
    return FaceCrop(image, method, region, box_in_region(box, region, settings.image_size))


def crop_center(rgb: np.ndarray, settings: FaceSettings) -> FaceCrop:
    region = center_region(rgb)
    return FaceCrop(crop_region(rgb, region, settings.image_size), "center", region, None)


def crop_face(
    rgb: np.ndarray, settings: FaceSettings = FaceSettings(), dataset_box: Box | None = None
) -> FaceCrop:
    """Square face crop of an RGB image. Without a detected face: the dataset's box (fallback `box`, when
    the dataset has one), else a centre crop (fallback `box` or `center`), else NoFaceError (`error`)."""
    faces = detect_faces(rgb, settings.scale_factor, settings.min_neighbors, settings.min_face_fraction)
    if faces:
        return crop_around(rgb, faces[0], "detected", settings)
    if settings.fallback == "box" and dataset_box is not None:
        return crop_around(rgb, dataset_box, "box", settings)
    if settings.fallback in ("box", "center"):
        return crop_center(rgb, settings)
    raise NoFaceError("no face detected (fallback 'error'; use --fallback box or center to keep such images)")

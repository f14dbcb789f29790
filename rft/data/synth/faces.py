"""Face sources: real photographs that ship inside installed packages, and procedurally varied identities.

Every face lives in one *canonical frame*: a square crop with the eyes at fixed positions (`LANDMARKS`), so
attacks can place masks, eye holes and paper glasses without a landmark detector. Real sources:

* scikit-image's astronaut (Eileen Collins, public domain), aligned by its eye centres;
* matplotlib's Grace Hopper portrait (public domain), when matplotlib is installed;
* the first 100 crops of scikit-image's LFW subset (25x25 greyscale faces), colourised with a skin tone and
  blended into a procedurally drawn head (hair, ears, neck, background), since the crops are too tight;
* fully procedural faces drawn with OpenCV (head shape, skin tone, hair, eyes, brows, nose, lips, beard).

An `Identity` fixes the source plus everything that makes a subject look like one person across images
(skin tone, hue, face proportions, a smooth geometric warp). A `Pose` varies per image: crop scale and shift,
roll, mirror flip and expression-like local warps (smile, raised brows, squint, open jaw).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import cv2
import numpy as np

from rft.data.synth.capture import (
    Illumination,
    lambert_shading,
    linear_to_srgb,
    specular_shading,
    srgb_to_linear,
)

BASE_SIZE = 256  # side of the canonical appearance images
FACE_CENTRE = (0.5, 0.54)
FACE_AXES = (0.25, 0.32)  # semi-axes of the face ellipse (cheeks, hairline to chin), in crop units
LANDMARKS: dict[str, tuple[float, float]] = {
    "left_eye": (0.385, 0.46),  # image left
    "right_eye": (0.615, 0.46),
    "nose": (0.5, 0.585),
    "mouth": (0.5, 0.70),
    "chin": (0.5, 0.86),
}

# Eye centres measured on the released images (OpenCV's Haar eye cascade, checked by eye).
_ASTRONAUT_EYES = ((202.0, 101.0), (247.0, 103.0))
_GRACE_HOPPER_EYES = ((223.0, 188.0), (306.0, 187.0))
_LFW_EYES = ((7.0, 8.0), (16.5, 8.0))  # mean position over the 100 face crops (pixel centres at integers)
LFW_FACES = 100

# sRGB skin tones from very light to very dark; identities interpolate between neighbours.
_SKIN_TONES = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.90, 0.71, 0.58],
        [0.80, 0.59, 0.45],
        [0.66, 0.45, 0.32],
        [0.50, 0.33, 0.23],
        [0.34, 0.22, 0.16],
    ],
    dtype=np.float32,
)
_HAIR_COLOURS = np.array(
    [[0.08, 0.06, 0.05], [0.22, 0.14, 0.08], [0.45, 0.30, 0.16], [0.75, 0.60, 0.38], [0.55, 0.53, 0.50]],
    dtype=np.float32,
)
_IRIS_COLOURS = np.array([[0.25, 0.15, 0.08], [0.12, 0.07, 0.04], [0.25, 0.40, 0.55], [0.30, 0.40, 0.25]])
_SOURCE_WEIGHTS = {"lfw": 0.4, "procedural": 0.4, "astronaut": 0.1, "grace_hopper": 0.1}


# ----------------------------------------------------------------------------------------------------------
# Real photographs
# ----------------------------------------------------------------------------------------------------------


def align_by_eyes(
    image: np.ndarray,
    left_eye: tuple[float, float],
    right_eye: tuple[float, float],
    size: int,
    border: int = cv2.BORDER_REFLECT101,
) -> np.ndarray:
    """Similarity-warp `image` so its eye centres land on the canonical eye positions of a size x size crop."""
    src_l, src_r = np.array(left_eye, np.float64), np.array(right_eye, np.float64)
    dst_l = np.array(LANDMARKS["left_eye"]) * size
    dst_r = np.array(LANDMARKS["right_eye"]) * size
    scale = np.linalg.norm(dst_r - dst_l) / np.linalg.norm(src_r - src_l)
    if scale < 0.8:  # shrink first with area averaging: warpAffine alone would alias
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        src_l, src_r, scale = src_l * scale, src_r * scale, 1.0
    angle = np.arctan2(*(dst_r - dst_l)[::-1]) - np.arctan2(*(src_r - src_l)[::-1])
    a, b = scale * np.cos(angle), scale * np.sin(angle)
    rotation = np.array([[a, -b], [b, a]])
    matrix = np.hstack([rotation, (dst_l - rotation @ src_l)[:, None]])
    interpolation = cv2.INTER_CUBIC if scale > 1.5 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, matrix, (size, size), flags=interpolation, borderMode=border)


@functools.cache
def astronaut_face() -> np.ndarray:
    """scikit-image's astronaut in the canonical frame, sRGB float32 in [0, 1]."""
    from skimage import data

    return align_by_eyes(data.astronaut().astype(np.float32) / 255, *_ASTRONAUT_EYES, BASE_SIZE)


def grace_hopper_path() -> str | None:
    try:
        import matplotlib
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")
    return path if os.path.exists(path) else None


@functools.cache
def grace_hopper_face() -> np.ndarray:
    """matplotlib's Grace Hopper portrait in the canonical frame, sRGB float32 in [0, 1]."""
    path = grace_hopper_path()
    if path is None:
        raise FileNotFoundError("matplotlib's sample image grace_hopper.jpg is not installed")
    image = cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255
    return align_by_eyes(image, *_GRACE_HOPPER_EYES, BASE_SIZE)


@functools.cache
def lfw_faces() -> np.ndarray:
    """The 100 face crops of scikit-image's LFW subset, (100, 25, 25) float32 greyscale in [0, 1]."""
    from skimage import data

    return data.lfw_subset()[:LFW_FACES].astype(np.float32)


def available_sources() -> tuple[str, ...]:
    sources = ("lfw", "procedural", "astronaut")
    return (*sources, "grace_hopper") if grace_hopper_path() else sources


# ----------------------------------------------------------------------------------------------------------
# Procedural heads
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadStyle:
    """Everything a procedurally drawn head needs; colours are sRGB triples."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_style: str  # short | long | bald
    hairline: float  # y of the hairline, crop units
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]
    jaw: float  # jaw width relative to the cheeks
    brow_thickness: float
    beard: bool
    background_top: tuple[float, float, float]
    background_bottom: tuple[float, float, float]
    shirt: tuple[float, float, float]


def _triple(values: np.ndarray) -> tuple[float, float, float]:
    red, green, blue = (round(float(v), 4) for v in np.clip(values, 0.0, 1.0))
    return red, green, blue


def sample_skin_tone(rng: np.random.Generator) -> np.ndarray:
    position = rng.uniform(0, len(_SKIN_TONES) - 1)
    low = int(position)
    high = min(low + 1, len(_SKIN_TONES) - 1)
    tone = _SKIN_TONES[low] + (position - low) * (_SKIN_TONES[high] - _SKIN_TONES[low])
    return tone * rng.uniform(0.95, 1.05, 3)


def sample_head_style(rng: np.random.Generator, skin: np.ndarray) -> HeadStyle:
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] * rng.uniform(0.8, 1.2, 3)
    lips = skin * np.array([0.95, 0.62, 0.62]) * rng.uniform(0.85, 1.05)
    wall = rng.uniform(0.25, 0.85) + rng.uniform(-0.1, 0.1, 3)  # walls are mostly desaturated
    return HeadStyle(
        skin=_triple(skin),
        hair=_triple(hair),
        hair_style=str(rng.choice(["short", "long", "bald"], p=[0.5, 0.4, 0.1])),
        hairline=round(float(rng.uniform(0.22, 0.30)), 4),
        iris=_triple(_IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))]),
        lips=_triple(lips),
        jaw=round(float(rng.uniform(0.55, 0.85)), 4),
        brow_thickness=round(float(rng.uniform(0.01, 0.02)), 4),
        beard=bool(rng.random() < 0.2),
        background_top=_triple(wall),
        background_bottom=_triple(wall * rng.uniform(0.6, 1.0)),
        shirt=_triple(rng.uniform(0.05, 0.8, 3)),
    )


_SHIFT = 4  # OpenCV drawing: 4 fractional bits of sub-pixel precision


def _pt(x: float, y: float, size: int) -> tuple[int, int]:
    return round(x * size * (1 << _SHIFT)), round(y * size * (1 << _SHIFT))


def _len(value: float, size: int) -> int:
    return max(1, round(value * size * (1 << _SHIFT)))


def _ellipse_mask(size: int, centre, axes, angle=0.0, arc=(0, 360), thickness=-1, blur=0.0) -> np.ndarray:
    """An anti-aliased filled (or stroked) ellipse as a float mask; centre/axes/thickness in crop units."""
    mask = np.zeros((size, size), np.uint8)
    thick = -1 if thickness < 0 else max(1, round(thickness * size))
    cv2.ellipse(
        mask,
        _pt(*centre, size),
        (_len(axes[0], size), _len(axes[1], size)),
        angle,
        arc[0],
        arc[1],
        255,
        thick,
        cv2.LINE_AA,
        _SHIFT,
    )
    return _soften(mask, blur * size)


def _polygon_mask(size: int, points: np.ndarray, blur: float = 0.0) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(points * size * (1 << _SHIFT)).astype(np.int32)], 255, cv2.LINE_AA, _SHIFT)
    return _soften(mask, blur * size)


def _soften(mask_u8: np.ndarray, sigma_px: float) -> np.ndarray:
    mask = mask_u8.astype(np.float32) / 255
    return cv2.GaussianBlur(mask, (0, 0), sigma_px) if sigma_px > 0 else mask


def _paint(canvas: np.ndarray, mask: np.ndarray, colour, opacity: float = 1.0) -> None:
    alpha = (mask * opacity)[..., None]
    canvas *= 1 - alpha
    canvas += alpha * np.asarray(colour, np.float32)


def _shade(canvas: np.ndarray, mask: np.ndarray, factor: float) -> None:
    """Darken (factor < 1) or lighten (factor > 1) under a soft mask."""
    canvas *= (1 + mask * (factor - 1))[..., None]


def _face_outline(jaw: float, width: float = 1.0, n: int = 72) -> np.ndarray:
    """Face contour: an ellipse whose lower half narrows towards the chin by `jaw`."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    narrowing = 1 - (1 - jaw) * np.clip(np.sin(t), 0, None) ** 2
    x = FACE_CENTRE[0] + FACE_AXES[0] * width * np.cos(t) * narrowing
    y = FACE_CENTRE[1] + FACE_AXES[1] * np.sin(t)
    return np.stack([x, y], axis=1)


def line_kernel(length: int, angle_deg: float) -> np.ndarray:
    """An anti-aliased line through the centre of a length x length kernel, unit energy: a smear direction."""
    kernel = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(np.deg2rad(angle_deg)) * c, np.sin(np.deg2rad(angle_deg)) * c
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
    return kernel / np.sqrt((kernel**2).sum())


def _hair_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Multiplicative strand texture: white noise smeared roughly vertically."""
    noise = rng.standard_normal((size, size), dtype=np.float32)
    strands = cv2.filter2D(noise, -1, line_kernel(9, 90 + rng.uniform(-15, 15)))
    return (1 + 0.25 * strands)[..., None]


def _wall(style: HeadStyle, size: int) -> np.ndarray:
    down = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    top, bottom = np.array(style.background_top, np.float32), np.array(style.background_bottom, np.float32)
    return np.ascontiguousarray(np.broadcast_to((1 - down) * top + down * bottom, (size, size, 3)))


def _draw_long_hair(canvas: np.ndarray, style: HeadStyle, texture: np.ndarray, size: int) -> None:
    arc = _face_outline(1.0, 1.35)[36:] - (0.0, 0.04)  # upper half, image left to right
    outline = np.concatenate([arc, [[FACE_CENTRE[0] + 0.34, 0.98], [FACE_CENTRE[0] - 0.34, 0.98]]])
    _paint(canvas, _polygon_mask(size, outline, 0.004), style.hair)
    canvas *= np.where(_polygon_mask(size, outline)[..., None] > 0, texture, 1.0)


def _draw_neck_shoulders_ears(canvas: np.ndarray, style: HeadStyle, size: int) -> None:
    cx = FACE_CENTRE[0]
    skin = np.array(style.skin, np.float32)
    neck = np.array([[cx - 0.1, 0.7], [cx + 0.1, 0.7], [cx + 0.11, 1.0], [cx - 0.11, 1.0]])
    _paint(canvas, _polygon_mask(size, neck), skin * 0.8)
    _paint(canvas, _ellipse_mask(size, (cx, 1.2), (0.46, 0.26), blur=0.003), style.shirt)
    for side in (-1, 1):
        ear = _ellipse_mask(size, (cx + side * FACE_AXES[0] * 0.97, 0.54), (0.03, 0.06), blur=0.003)
        _paint(canvas, ear, skin * 0.9)


def _draw_face_skin(canvas: np.ndarray, style: HeadStyle, rng: np.random.Generator, size: int) -> None:
    """The face's skin, with a baked key light from the upper left on an ellipsoid and faint pore noise,
    so the face looks rounded before any relighting."""
    face = _polygon_mask(size, _face_outline(style.jaw), 0.002)
    _paint(canvas, face, style.skin)
    x = (np.arange(size, dtype=np.float32)[None, :] / size - FACE_CENTRE[0]) / FACE_AXES[0]
    y = (np.arange(size, dtype=np.float32)[:, None] / size - FACE_CENTRE[1]) / FACE_AXES[1]
    key = np.clip(-0.4 * x - 0.3 * y + 0.87 * np.sqrt(np.clip(1 - x**2 - y**2, 0, 1)), 0, 1)
    pores = cv2.GaussianBlur(rng.standard_normal((size, size), dtype=np.float32), (0, 0), 0.7)
    canvas *= (1 + face * (0.45 * key - 0.45 + 0.04 * pores))[..., None]


def _draw_hair_cap(canvas: np.ndarray, style: HeadStyle, texture: np.ndarray, size: int) -> None:
    """Hair over the top of the head down to a wavy hairline that drops to the temples."""
    cx, half_width = FACE_CENTRE[0], FACE_AXES[0] * 1.08
    top = _face_outline(1.0, 1.08)[36:] - (0.0, 0.035)  # upper half of a wider ellipse, left to right
    fringe_x = np.linspace(cx + half_width, cx - half_width, 32)  # back along the hairline, right to left
    across = (fringe_x - cx) / half_width
    fringe_y = (
        style.hairline + (0.44 - style.hairline) * across**6 + 0.012 * np.sin(across * 9 + style.jaw * 50)
    )
    cap = np.concatenate([top, np.stack([fringe_x, fringe_y], 1)])
    _paint(canvas, _polygon_mask(size, cap, 0.003), style.hair)
    canvas *= np.where(_polygon_mask(size, cap)[..., None] > 0, texture, 1.0)


def draw_head(
    style: HeadStyle, rng: np.random.Generator, size: int = BASE_SIZE, features: bool = True
) -> np.ndarray:
    """Paint a head in the canonical frame (sRGB float32). `features=False` leaves the face blank for LFW.

    Baked shading (a key light, eye sockets, nose sides, cheek blush) gives the flat paint some volume;
    strand noise on hair and pore noise on skin give it texture.
    """
    canvas = _wall(style, size)
    hair_texture = _hair_texture(rng, size)
    if style.hair_style == "long":
        _draw_long_hair(canvas, style, hair_texture, size)
    _draw_neck_shoulders_ears(canvas, style, size)
    _draw_face_skin(canvas, style, rng, size)
    if features:
        _draw_features(canvas, style, rng, size)
    if style.hair_style != "bald":
        _draw_hair_cap(canvas, style, hair_texture, size)
    return np.clip(cv2.GaussianBlur(canvas, (0, 0), 0.5), 0, 1)


def _draw_features(canvas: np.ndarray, style: HeadStyle, rng: np.random.Generator, size: int) -> None:
    skin, hair = np.array(style.skin, np.float32), np.array(style.hair, np.float32)
    for name, side in (("left_eye", -1), ("right_eye", 1)):
        ex, ey = LANDMARKS[name]
        _shade(canvas, _ellipse_mask(size, (ex, ey - 0.01), (0.065, 0.04), blur=0.02), 0.85)  # eye socket
        _paint(canvas, _ellipse_mask(size, (ex, ey), (0.05, 0.021), blur=0.001), (0.9, 0.88, 0.85))
        _paint(canvas, _ellipse_mask(size, (ex, ey), (0.019, 0.019), blur=0.001), style.iris)
        _paint(canvas, _ellipse_mask(size, (ex, ey), (0.008, 0.008)), (0.02, 0.02, 0.02))
        _paint(canvas, _ellipse_mask(size, (ex + 0.006, ey - 0.006), (0.004, 0.004)), (1, 1, 1), 0.8)
        _paint(
            canvas,
            _ellipse_mask(size, (ex, ey + 0.003), (0.052, 0.025), arc=(190, 350), thickness=0.007),
            (0.1, 0.07, 0.06),
        )
        brow = _ellipse_mask(
            size,
            (ex + side * 0.005, ey - 0.025),
            (0.058, 0.03),
            arc=(200, 340),
            thickness=style.brow_thickness,
            blur=0.002,
        )
        _paint(canvas, brow, hair, 0.9)
        _paint(
            canvas,
            _ellipse_mask(size, (ex + side * 0.03, 0.63), (0.045, 0.03), blur=0.02),
            (0.85, 0.4, 0.4),
            0.12,
        )
    nx, ny = LANDMARKS["nose"]
    for side in (-1, 1):
        _shade(canvas, _ellipse_mask(size, (nx + side * 0.028, ny - 0.05), (0.012, 0.065), blur=0.01), 0.8)
        _shade(canvas, _ellipse_mask(size, (nx + side * 0.03, ny + 0.002), (0.016, 0.014), blur=0.006), 0.85)
        _paint(
            canvas,
            _ellipse_mask(size, (nx + side * 0.018, ny + 0.01), (0.01, 0.006), blur=0.002),
            skin * 0.35,
        )
    _shade(
        canvas, _ellipse_mask(size, (nx, ny - 0.01), (0.012, 0.02), blur=0.008), 1.08
    )  # nose-tip highlight
    mx, my = LANDMARKS["mouth"]
    _paint(canvas, _ellipse_mask(size, (mx, my - 0.009), (0.062, 0.014), blur=0.002), style.lips)
    _paint(
        canvas, _ellipse_mask(size, (mx, my + 0.011), (0.055, 0.019), blur=0.002), np.array(style.lips) * 1.05
    )
    _paint(
        canvas,
        _ellipse_mask(size, (mx, my - 0.004), (0.062, 0.006), arc=(0, 180), thickness=0.005, blur=0.001),
        skin * 0.3,
    )
    if style.beard:
        jaw = _polygon_mask(size, _face_outline(style.jaw), 0.004) * (np.linspace(0, 1, size)[:, None] > 0.66)
        stipple = rng.random((size, size), dtype=np.float32) < 0.5
        _paint(canvas, cv2.GaussianBlur(jaw * stipple, (0, 0), 0.6), hair, 0.8)
        _paint(canvas, _ellipse_mask(size, (mx, my), (0.06, 0.03), blur=0.004), skin)
        _paint(canvas, _ellipse_mask(size, (mx, my), (0.045, 0.015), blur=0.002), style.lips)


def lfw_head(index: int, style: HeadStyle, rng: np.random.Generator, size: int = BASE_SIZE) -> np.ndarray:
    """Blend LFW face crop `index`, colourised with `style.skin`, into a procedurally drawn head.

    The greyscale crop is taken as relative reflectance: in linear light it multiplies the skin colour, so
    shadows, brows and eyes keep the skin's hue, as they do in real skin under white light.
    """
    head = draw_head(style, rng, size, features=False)
    grey = align_by_eyes(lfw_faces()[index], *_LFW_EYES, size)
    inside = align_by_eyes(np.ones((25, 25), np.float32), *_LFW_EYES, size, border=cv2.BORDER_CONSTANT)
    inside = cv2.erode((inside > 0.99).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
    face = _polygon_mask(size, _face_outline(0.75, 1.05))
    blend = cv2.GaussianBlur(face * inside, (0, 0), 0.025 * size)[..., None]
    relative = srgb_to_linear(grey) / max(float(np.median(srgb_to_linear(grey)[face * inside > 0.5])), 1e-3)
    colour = srgb_to_linear(np.array(style.skin, np.float32)) * relative[..., None]
    mx, my = LANDMARKS["mouth"]
    lips = _ellipse_mask(size, (mx, my), (0.05, 0.02), blur=0.01)[..., None]
    colour *= 1 - lips * (1 - np.array([1.0, 0.75, 0.75], np.float32))
    return np.clip(head * (1 - blend) + linear_to_srgb(colour) * blend, 0, 1)


# ----------------------------------------------------------------------------------------------------------
# Identities
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """One synthetic subject. The warp is a sum of plane waves: (amplitude_x, amplitude_y, fx, fy, phase)."""

    source: str  # lfw | procedural | astronaut | grace_hopper
    lfw_index: int | None
    style: HeadStyle | None
    skin: tuple[float, float, float]
    hue_shift_deg: float
    face_scale: tuple[float, float]
    warp: tuple[tuple[float, float, float, float, float], ...]
    texture_seed: int

    def to_meta(self) -> dict:
        meta = {
            "source": self.source,
            "skin_srgb": list(self.skin),
            "hue_shift_deg": self.hue_shift_deg,
            "face_scale": list(self.face_scale),
        }
        if self.lfw_index is not None:
            meta["lfw_index"] = self.lfw_index
        if self.style is not None:
            meta["hair_style"] = self.style.hair_style
            meta["beard"] = self.style.beard
        return meta


def sample_identity(
    rng: np.random.Generator, lfw_index: int, sources: tuple[str, ...] | None = None
) -> Identity:
    """Draw a subject. `lfw_index` is used when the LFW source is drawn (the caller keeps subjects disjoint)."""
    sources = sources or available_sources()
    weights = np.array([_SOURCE_WEIGHTS[s] for s in sources])
    source = str(rng.choice(sources, p=weights / weights.sum()))
    skin = sample_skin_tone(rng)
    style = sample_head_style(rng, skin) if source in {"lfw", "procedural"} else None
    warp = tuple(
        (
            round(float(rng.uniform(-0.008, 0.008)), 5),
            round(float(rng.uniform(-0.008, 0.008)), 5),
            round(float(rng.uniform(-1.5, 1.5)), 4),
            round(float(rng.uniform(-1.5, 1.5)), 4),
            round(float(rng.uniform(0, 2 * np.pi)), 4),
        )
        for _ in range(3)
    )
    return Identity(
        source=source,
        lfw_index=lfw_index if source == "lfw" else None,
        style=style,
        skin=_triple(skin),
        hue_shift_deg=round(float(rng.uniform(-10, 10)), 3),
        face_scale=(round(float(rng.uniform(0.92, 1.08)), 4), round(float(rng.uniform(0.94, 1.06)), 4)),
        warp=warp,
        texture_seed=int(rng.integers(2**31)),
    )


def _rotate_hue(linear: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate colours about the grey axis (Rodrigues' formula), keeping greys grey."""
    theta = np.deg2rad(degrees)
    k = np.ones(3) / np.sqrt(3)
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rotation = np.eye(3) * np.cos(theta) + np.sin(theta) * cross + (1 - np.cos(theta)) * np.outer(k, k)
    return np.clip(linear @ rotation.T.astype(np.float32), 0, None)


def _face_ellipse_mask(size: int, sigma: float = 0.03) -> np.ndarray:
    return _ellipse_mask(size, FACE_CENTRE, (FACE_AXES[0] * 0.9, FACE_AXES[1] * 0.85), blur=sigma)


def _retarget_skin(srgb: np.ndarray, skin: tuple[float, float, float]) -> np.ndarray:
    """Scale the face region's colour, in linear light, so its mean matches the identity's skin tone."""
    linear = srgb_to_linear(srgb)
    mask = _face_ellipse_mask(srgb.shape[0])
    mean = (linear * mask[..., None]).sum((0, 1)) / mask.sum()
    ratio = np.clip(srgb_to_linear(np.array(skin, np.float32)) / np.maximum(mean, 1e-4), 0.2, 3.0)
    return linear * (1 + mask[..., None] * (ratio - 1))


def _identity_warp_maps(identity: Identity, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each canonical pixel of the identity's face samples the source face (an inverse map)."""
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = np.meshgrid(grid, grid)
    sx, sy = identity.face_scale
    src_x = FACE_CENTRE[0] + (x - FACE_CENTRE[0]) / sx
    src_y = FACE_CENTRE[1] + (y - FACE_CENTRE[1]) / sy
    for amp_x, amp_y, fx, fy, phase in identity.warp:
        wave = np.sin(2 * np.pi * (fx * x + fy * y) + phase)
        src_x -= amp_x * wave
        src_y -= amp_y * wave
    return src_x * size - 0.5, src_y * size - 0.5


def identity_landmarks(identity: Identity) -> dict[str, np.ndarray]:
    """Canonical landmarks moved by the identity's face proportions (crop units)."""
    sx, sy = identity.face_scale
    centre = np.array(FACE_CENTRE)
    return {k: centre + (np.array(v) - centre) * (sx, sy) for k, v in LANDMARKS.items()}


@functools.lru_cache(maxsize=128)
def identity_appearance(identity: Identity) -> np.ndarray:
    """The identity's face in the canonical frame under neutral light (sRGB float32, BASE_SIZE square)."""
    rng = np.random.default_rng(identity.texture_seed)
    if identity.source == "astronaut":
        base = astronaut_face()
    elif identity.source == "grace_hopper":
        base = grace_hopper_face()
    elif identity.source == "lfw":
        base = lfw_head(identity.lfw_index or 0, identity.style, rng)
    else:
        base = draw_head(identity.style, rng)
    if identity.source in {"astronaut", "grace_hopper"}:
        linear = _retarget_skin(base, identity.skin)
    else:
        linear = srgb_to_linear(base)
    srgb = linear_to_srgb(_rotate_hue(linear, identity.hue_shift_deg))
    map_x, map_y = _identity_warp_maps(identity, BASE_SIZE)
    warped = cv2.remap(srgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    warped.setflags(write=False)  # shared through the cache
    return warped


# ----------------------------------------------------------------------------------------------------------
# Per-image pose and rendering
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pose:
    """Per-image framing and expression. Expression amplitudes are in [0, 1]."""

    scale: float
    shift: tuple[float, float]
    roll_deg: float
    flip: bool
    smile: float
    brow_raise: float
    squint: float
    jaw_open: float

    def to_meta(self) -> dict:
        return {
            "scale": self.scale,
            "shift": list(self.shift),
            "roll_deg": self.roll_deg,
            "flip": self.flip,
            "smile": self.smile,
            "brow_raise": self.brow_raise,
            "squint": self.squint,
            "jaw_open": self.jaw_open,
        }


def sample_pose(rng: np.random.Generator) -> Pose:
    def r(lo: float, hi: float) -> float:
        return round(float(rng.uniform(lo, hi)), 4)

    return Pose(
        scale=r(0.9, 1.12),
        shift=(r(-0.04, 0.04), r(-0.04, 0.04)),
        roll_deg=r(-8, 8),
        flip=bool(rng.random() < 0.5),
        smile=r(0, 1) if rng.random() < 0.5 else 0.0,
        brow_raise=r(0, 1) if rng.random() < 0.3 else 0.0,
        squint=r(0, 1) if rng.random() < 0.3 else 0.0,
        jaw_open=r(0, 1) if rng.random() < 0.2 else 0.0,
    )


@dataclass
class FaceRender:
    """A face rendered at a given size: appearance under neutral light plus the geometry attacks need.

    `normals` (HxWx3, unit, z towards the camera) come from an ellipsoid around the head and fade to a
    frontal wall behind it; `face_mask` is a soft face ellipse; `landmarks` are pixel coordinates.
    """

    srgb: np.ndarray
    normals: np.ndarray
    face_mask: np.ndarray
    landmarks: dict[str, np.ndarray]
    ellipse: tuple[
        float, float, float, float, float
    ]  # centre x, centre y, semi-axis x, semi-axis y, roll (deg)

    @property
    def size(self) -> int:
        return self.srgb.shape[0]

    def face_box(self) -> tuple[int, int, int, int]:
        cx, cy, ax, ay, _ = self.ellipse
        box = (cx - ax, cy - ay, cx + ax, cy + ay)
        x0, y0, x1, y1 = (int(np.clip(round(v), 0, self.size)) for v in box)
        return x0, y0, x1, y1


def _gaussian_bump(x: np.ndarray, y: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2))


def _expression_displacement(
    x: np.ndarray, y: np.ndarray, pose: Pose, marks: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Forward displacement (crop units) of expression-like local warps around the eyes, brows and mouth."""
    dx, dy = np.zeros_like(x), np.zeros_like(y)
    mouth = marks["mouth"]
    for side in (-1, 1):
        corner = mouth + np.array([side * 0.055, 0.0])
        bump = _gaussian_bump(x, y, corner, 0.03) * pose.smile
        dx += side * 0.008 * bump
        dy -= 0.012 * bump
    for eye in (marks["left_eye"], marks["right_eye"]):
        dy -= 0.012 * pose.brow_raise * _gaussian_bump(x, y, eye - (0, 0.045), 0.035)
        dy -= 0.35 * pose.squint * (y - eye[1]) * _gaussian_bump(x, y, eye, 0.03)
    dy += 0.014 * pose.jaw_open * _gaussian_bump(x, y, marks["chin"] - (0, 0.04), 0.07)
    return dx, dy


def _pose_matrix(pose: Pose) -> np.ndarray:
    """3x3 forward map from canonical crop units to output crop units (scale and roll about the face centre)."""
    theta = np.deg2rad(pose.roll_deg)
    c, s = np.cos(theta) * pose.scale, np.sin(theta) * pose.scale
    centre = np.array(FACE_CENTRE)
    target = centre + np.array(pose.shift)
    linear = np.array([[c, -s], [s, c]])
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = target - linear @ centre
    if pose.flip:
        matrix = np.array([[-1.0, 0, 1], [0, 1, 0], [0, 0, 1]]) @ matrix
    return matrix


def _head_normals(size: int, ellipse: tuple[float, float, float, float, float]) -> np.ndarray:
    """Normals of a rounded head, fading into a frontal background wall beyond its silhouette.

    The surface tilts linearly with distance from the face centre, up to about 45 degrees at the rim: a
    gentler relief than a full ellipsoid, whose grazing rim would darken the background wherever the real
    head outline is narrower than the ellipse.
    """
    cx, cy, ax, ay, roll = ellipse
    theta = np.deg2rad(roll)
    grid = np.arange(size, dtype=np.float32) + 0.5
    x, y = grid[None, :] - cx, grid[:, None] - cy
    u = (np.cos(theta) * x + np.sin(theta) * y) / (ax * 1.15)
    v = (-np.sin(theta) * x + np.cos(theta) * y) / (ay * 1.1)
    slope = 0.9 * np.clip((1.3 - (u**2 + v**2)) / 0.4, 0, 1)
    local_x, local_y = u * slope, v * slope
    nx = np.cos(theta) * local_x - np.sin(theta) * local_y
    ny = np.sin(theta) * local_x + np.cos(theta) * local_y
    normals = np.stack([nx, ny, np.ones_like(nx)], axis=-1).astype(np.float32)
    return normals / np.linalg.norm(normals, axis=-1, keepdims=True)


def render_face(identity: Identity, pose: Pose, size: int) -> FaceRender:
    """Render `identity` in `pose` as a size x size crop (one remap of the cached canonical appearance)."""
    appearance = identity_appearance(identity)
    marks = identity_landmarks(identity)
    forward = _pose_matrix(pose)
    inverse = np.linalg.inv(forward)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    qx, qy = np.meshgrid(grid, grid)
    px = inverse[0, 0] * qx + inverse[0, 1] * qy + inverse[0, 2]
    py = inverse[1, 0] * qx + inverse[1, 1] * qy + inverse[1, 2]
    dx, dy = _expression_displacement(px, py, pose, marks)
    map_x = ((px - dx) * BASE_SIZE - 0.5).astype(np.float32)
    map_y = ((py - dy) * BASE_SIZE - 0.5).astype(np.float32)
    srgb = cv2.remap(appearance, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)

    def to_pixels(point: np.ndarray) -> np.ndarray:
        return (forward @ np.array([point[0], point[1], 1.0]))[:2] * size

    landmarks = {k: to_pixels(v) for k, v in marks.items()}
    if pose.flip:  # the image-left eye is now the other one
        landmarks["left_eye"], landmarks["right_eye"] = landmarks["right_eye"], landmarks["left_eye"]
    centre = to_pixels(np.array(FACE_CENTRE))
    sx, sy = identity.face_scale
    axes = (FACE_AXES[0] * sx * pose.scale * size, FACE_AXES[1] * sy * pose.scale * size)
    roll = -pose.roll_deg if pose.flip else pose.roll_deg
    ellipse = (float(centre[0]), float(centre[1]), float(axes[0]), float(axes[1]), float(roll))
    face_mask = _ellipse_mask(size, centre / size, (axes[0] / size, axes[1] / size), roll, blur=0.01)
    return FaceRender(srgb, _head_normals(size, ellipse), face_mask, landmarks, ellipse)


def light_face(face: FaceRender, illumination: Illumination, skin_gloss: float = 0.04) -> np.ndarray:
    """Scene radiance of a real face: its colour relit by the scene's light on the head's relief.

    The rendered appearance already holds the source photo's soft lighting; directional Lambertian shading
    on the ellipsoid normals and a faint sebum sheen on the face add the scene's light.
    """
    albedo = srgb_to_linear(face.srgb)
    diffuse = lambert_shading(face.normals, illumination)[..., None]
    sheen = (skin_gloss * specular_shading(face.normals, illumination, 12.0) * face.face_mask)[..., None]
    return ((albedo * diffuse + sheen) * illumination.rgb).astype(np.float32)

"""Presentation attacks simulated from first principles: print, replay, masks and partial attacks.

Each attack returns scene radiance at the sensor's sampling grid (linear RGB, the units of `capture`), so
the same camera then photographs attacks and live faces alike. Where an attack is a flat object in front of
the camera (a print, a screen), it is rendered at several times the sensor resolution and *resampled by the
camera's pixel grid* (`recapture_plane`): the pixel aperture is a box filter, the lens adds a little blur,
and the grid samples at a slightly different scale and rotation from the print's halftone screen or the
display's sub-pixel grid, so aliasing (moire) appears by itself, as it does in real recaptures.

`strength` scales the attack cues (1 = the default, plausible; 2-3 = obvious, for demos with small models):
it shrinks lens and defocus blur before sampling, coarsens halftone screens and display pitch (relative to
the sensor's), darkens the display's black matrix, and strengthens paper fibre, glare, seams and material
differences.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from rft.data.synth.capture import (
    Illumination,
    blackbody_rgb,
    jpeg_roundtrip,
    lambert_shading,
    lens_blur,
    linear_to_srgb,
    specular_shading,
    srgb_to_linear,
)
from rft.data.synth.faces import FaceRender, light_face, line_kernel

# Single-pass transmittance of process inks per camera channel (R, G, B): real inks are impure, e.g. cyan
# also absorbs some green, which is where a print's gamut compression comes from.
INK_TRANSMITTANCE = {
    "cyan": np.array([0.22, 0.78, 0.95], np.float32),
    "magenta": np.array([0.90, 0.28, 0.70], np.float32),
    "yellow": np.array([0.97, 0.90, 0.22], np.float32),
    "black": np.array([0.12, 0.12, 0.13], np.float32),
}
# Conventional screen angles of four-colour offset/laser printing (rosette-forming, moire-minimising).
SCREEN_ANGLES_DEG = {"cyan": 15.0, "magenta": 75.0, "yellow": 0.0, "black": 45.0}
PRINT_SUPERSAMPLING = 3  # print pixels per sensor pixel
SUBPIXELS = 3  # RGB stripes per display pixel


def _round(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


# ----------------------------------------------------------------------------------------------------------
# The attacker's photograph of the target
# ----------------------------------------------------------------------------------------------------------


def photograph(face: FaceRender, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The attacker's digital photo of the target (sRGB float32): soft frontal light, a decent camera, JPEG.

    Print and replay attacks show this photo, so their content carries its own lighting, unrelated to the
    light in the scene where the attack is presented.
    """
    light = Illumination(
        intensity=1.0,
        cct_kelvin=float(rng.uniform(4500, 6500)),
        azimuth_deg=float(rng.uniform(0, 360)),
        elevation_deg=float(rng.uniform(0, 35)),
        ambient=float(rng.uniform(0.4, 0.7)),
    )
    linear = srgb_to_linear(face.srgb) * lambert_shading(face.normals, light)[..., None]
    centre = linear[
        linear.shape[0] // 4 : -linear.shape[0] // 4, linear.shape[1] // 4 : -linear.shape[1] // 4
    ]
    linear *= 0.2 / max(float(centre.mean()), 1e-4)
    quality = int(rng.integers(80, 96))
    srgb_u8 = np.round(linear_to_srgb(linear) * 255).astype(np.uint8)
    photo = jpeg_roundtrip(srgb_u8, quality).astype(np.float32) / 255
    meta = {
        "light_elevation_deg": _round(light.elevation_deg),
        "light_azimuth_deg": _round(light.azimuth_deg),
        "cct_kelvin": _round(light.cct_kelvin, 1),
        "jpeg_quality": quality,
    }
    return photo, meta


# ----------------------------------------------------------------------------------------------------------
# Recapturing a flat object with the camera's pixel grid
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaneView:
    """How the camera sees a flat object: sensor pixel -> object pixel, as a 3x3 homography.

    `scale` is object pixels per sensor pixel, `rotation_deg` the roll between the two grids, `keystone_x/y`
    the perspective foreshortening across the frame (a tilted sheet or screen), `shift` in sensor pixels.
    """

    scale: float
    rotation_deg: float
    keystone_x: float
    keystone_y: float
    shift: tuple[float, float]

    def matrix(self, sensor: int, object_centre: tuple[float, float]) -> np.ndarray:
        half = sensor / 2
        to_centre = np.array([[1, 0, -half], [0, 1, -half], [0, 0, 1.0]])
        tilt = np.array([[1, 0, 0], [0, 1, 0], [self.keystone_x / half, self.keystone_y / half, 1.0]])
        theta = np.deg2rad(self.rotation_deg)
        c, s = np.cos(theta) * self.scale, np.sin(theta) * self.scale
        place = np.array(
            [
                [c, -s, object_centre[0] + self.shift[0] * self.scale],
                [s, c, object_centre[1] + self.shift[1] * self.scale],
                [0, 0, 1.0],
            ]
        )
        return place @ tilt @ to_centre

    def to_meta(self) -> dict:
        return {
            "object_px_per_sensor_px": _round(self.scale),
            "rotation_deg": _round(self.rotation_deg),
            "keystone": [_round(self.keystone_x), _round(self.keystone_y)],
            "shift_px": [_round(self.shift[0]), _round(self.shift[1])],
        }


def sample_recapture_zoom(rng: np.random.Generator, far_probability: float = 0.15) -> float:
    """How much the camera magnifies a held-up print or screen relative to the photo's framing.

    Mostly above 1: the face detector's crop lies inside the medium. With `far_probability` the medium is
    held far enough that its edges and the wall behind it enter the crop.
    """
    return float(rng.uniform(0.7, 0.85) if rng.random() < far_probability else rng.uniform(1.05, 1.25))


def sample_plane_view(rng: np.random.Generator, scale: float, max_rotation_deg: float) -> PlaneView:
    return PlaneView(
        scale=scale,
        rotation_deg=float(rng.uniform(-max_rotation_deg, max_rotation_deg)),
        keystone_x=float(rng.uniform(-0.06, 0.06)),
        keystone_y=float(rng.uniform(-0.06, 0.06)),
        shift=(float(rng.uniform(-4, 4)), float(rng.uniform(-4, 4))),
    )


def _sensor_to_object(matrix: np.ndarray, sensor: int) -> tuple[np.ndarray, np.ndarray]:
    """Object coordinates seen by each sensor pixel centre."""
    grid = np.arange(sensor, dtype=np.float64) + 0.5
    x, y = np.meshgrid(grid, grid)
    w = matrix[2, 0] * x + matrix[2, 1] * y + matrix[2, 2]
    ox = (matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]) / w - 0.5
    oy = (matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]) / w - 0.5
    return ox.astype(np.float32), oy.astype(np.float32)


def disk_kernel(radius: float) -> np.ndarray:
    """Defocus point-spread function: a uniformly lit disk (the aperture's image), anti-aliased at the rim."""
    half = int(np.ceil(radius)) + 1
    grid = np.arange(-half, half + 1, dtype=np.float32)
    distance = np.sqrt(grid[None, :] ** 2 + grid[:, None] ** 2)
    kernel = np.clip(radius + 0.5 - distance, 0, 1)
    return kernel / kernel.sum()


def pixel_aperture_kernel(width: float) -> np.ndarray:
    """1-D box of fractional `width` (object pixels): whole taps inside, partial taps at both ends.

    Rounding the width to whole pixels would be wrong in a way that matters: a box exactly one display
    pitch wide cancels that pitch's pattern completely.
    """
    width = max(width, 1.0)
    inner = 2 * int((width - 1) // 2) + 1
    partial = (width - inner) / 2
    return (np.array([partial, *([1.0] * inner), partial], np.float32) / width).reshape(-1, 1)


def recapture_plane(
    plane: np.ndarray,
    sensor: int,
    matrix: np.ndarray,
    lens_sigma_px: float,
    defocus_px: float,
    fill_factor: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample a high-resolution flat object with the sensor grid; returns (image, object x, object y).

    Before point sampling, the object is filtered by what physically precedes the sensor: the defocus disk
    (radius `defocus_px`, sensor pixels), the lens PSF (`lens_blur`, `lens_sigma_px`) and the pixel aperture
    (a box `fill_factor` pixels wide). The box's sinc response has side lobes, so periodic detail finer than
    the pixel pitch is not removed but folded into low frequencies: moire.
    """
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:2, :2]))))
    filtered = plane
    if defocus_px * scale >= 0.5:
        filtered = cv2.filter2D(filtered, -1, disk_kernel(defocus_px * scale), borderType=cv2.BORDER_REFLECT)
    filtered = lens_blur(filtered, lens_sigma_px * scale)
    aperture = pixel_aperture_kernel(fill_factor * scale)
    filtered = cv2.sepFilter2D(filtered, -1, aperture, aperture, borderType=cv2.BORDER_REFLECT)
    ox, oy = _sensor_to_object(matrix, sensor)
    image = cv2.remap(filtered, ox, oy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return image, ox, oy


def rectangle_coverage(
    ox: np.ndarray, oy: np.ndarray, x0: float, y0: float, x1: float, y1: float
) -> np.ndarray:
    """Anti-aliased share of each sensor pixel that falls inside an object-space rectangle."""
    inside_x = np.minimum(ox - x0, x1 - ox)
    inside_y = np.minimum(oy - y0, y1 - oy)
    return np.clip(np.minimum(inside_x, inside_y) + 0.5, 0, 1).astype(np.float32)


def _object_to_sensor(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    homogeneous = np.linalg.inv(matrix) @ np.vstack([points.T, np.ones(len(points))])
    return (homogeneous[:2] / homogeneous[2]).T


def _box_through(matrix: np.ndarray, box: tuple[float, float, float, float], sensor: int) -> tuple[int, ...]:
    x0, y0, x1, y1 = box
    corners = _object_to_sensor(matrix, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64))
    low, high = corners.min(0), corners.max(0)
    return tuple(int(np.clip(round(v), 0, sensor)) for v in (low[0], low[1], high[0], high[1]))


def _plane_shading(illumination: Illumination, view: PlaneView, sensor: int, falloff: float) -> np.ndarray:
    """Lambertian shading of a flat sheet, tilted as the keystone implies, with light fall-off across it."""
    normal = np.array([view.keystone_x * 2, view.keystone_y * 2, 1.0], np.float32)
    normal /= np.linalg.norm(normal)
    direct = float(np.clip(normal @ illumination.direction, 0, None))
    base = illumination.ambient + (1 - illumination.ambient) * direct
    across = (np.arange(sensor, dtype=np.float32) + 0.5) / sensor - 0.5
    light_xy = illumination.direction[:2]
    gradient = 1 + falloff * (light_xy[0] * across[None, :] + light_xy[1] * across[:, None])
    return (base * gradient).astype(np.float32)


def _soft_blob(
    sensor: int, centre: tuple[float, float], sigma: tuple[float, float], angle_deg: float
) -> np.ndarray:
    """A smooth elongated highlight (the reflection of a window or lamp), peak 1."""
    grid = np.arange(sensor, dtype=np.float32) + 0.5
    x, y = grid[None, :] - centre[0], grid[:, None] - centre[1]
    theta = np.deg2rad(angle_deg)
    u = np.cos(theta) * x + np.sin(theta) * y
    v = -np.sin(theta) * x + np.cos(theta) * y
    return np.exp(-0.5 * ((u / sigma[0]) ** 2 + (v / sigma[1]) ** 2)).astype(np.float32)


def _background(rng: np.random.Generator, sensor: int, illumination: Illumination) -> tuple[np.ndarray, dict]:
    """A wall behind a held-up print or screen: a desaturated colour with a gentle gradient."""
    albedo = rng.uniform(0.15, 0.7) + rng.uniform(-0.05, 0.05, 3)
    across = np.linspace(-0.5, 0.5, sensor, dtype=np.float32)
    gradient = 1 + rng.uniform(-0.3, 0.3) * across[:, None] + rng.uniform(-0.3, 0.3) * across[None, :]
    wall = srgb_to_linear(albedo.astype(np.float32))[None, None, :] * gradient[..., None]
    shading = illumination.ambient + (1 - illumination.ambient) * max(0.0, float(illumination.direction[2]))
    return wall * shading * illumination.rgb, {"wall_srgb": [_round(v) for v in albedo]}


# ----------------------------------------------------------------------------------------------------------
# Print
# ----------------------------------------------------------------------------------------------------------


def separate_cmyk(srgb: np.ndarray, black_generation: float) -> dict[str, np.ndarray]:
    """Device RGB -> ink coverages (C, M, Y, K) with grey-component replacement.

    The grey part shared by C, M and Y is printed with black ink instead (`black_generation` of it), as
    printer drivers do to save ink and sharpen shadows.
    """
    cyan, magenta, yellow = (1.0 - np.clip(srgb[..., c], 0, 1) for c in range(3))
    black = black_generation * np.minimum(np.minimum(cyan, magenta), yellow)
    remaining = 1.0 / np.maximum(1.0 - black, 1e-4)
    return {
        "cyan": (cyan - black) * remaining,
        "magenta": (magenta - black) * remaining,
        "yellow": (yellow - black) * remaining,
        "black": black,
    }


def _spot_threshold(
    shape: tuple[int, int], period: float, angle_deg: float, phase: tuple[float, float]
) -> np.ndarray:
    """Clustered-dot screen: t = 1/2 - (cos a + cos b)/4 on a grid rotated by `angle_deg`, lowest at dot centres.

    Each plane wave cos(fx x + fy y + p) = cos(fx x + p) cos(fy y) - sin(fx x + p) sin(fy y) is a sum of two
    outer products of 1-D waves, so the whole screen is one (H x 5) @ (5 x W) matrix product.
    """
    theta = np.deg2rad(angle_deg)
    k = 2 * np.pi / period
    x = np.arange(shape[1], dtype=np.float64)
    y = np.arange(shape[0], dtype=np.float64)
    rows, columns = [np.full(shape[0], 0.5)], [np.ones(shape[1])]
    for (fx, fy), offset in zip(
        ((np.cos(theta), np.sin(theta)), (-np.sin(theta), np.cos(theta))), phase, strict=True
    ):
        rows += [-0.25 * np.cos(k * fy * y), 0.25 * np.sin(k * fy * y)]
        columns += [np.cos(k * fx * x + offset), np.sin(k * fx * x + offset)]
    return np.stack(rows, axis=1).astype(np.float32) @ np.stack(columns).astype(np.float32)


_TONE_LEVELS = 1024


@functools.cache
def _screen_tone_curve() -> np.ndarray:
    """Quantiles of the spot threshold over one cell: the threshold below which a given coverage is inked.

    Thresholding a coverage c against this quantile inks exactly a share c of each cell, so the screen
    reproduces tones linearly (a printer's calibration) whatever the dot shape.
    """
    phase = np.linspace(0, 2 * np.pi, 512, endpoint=False)
    t = (0.5 - 0.25 * (np.cos(phase)[:, None] + np.cos(phase)[None, :])).ravel()
    return np.quantile(t, np.linspace(0, 1, _TONE_LEVELS)).astype(np.float32)


def halftone(
    coverage: np.ndarray, threshold: np.ndarray, period: float, edge_noise: np.ndarray
) -> np.ndarray:
    """Ink area (0..1) per pixel: ink wherever the calibrated coverage exceeds the (rough-edged) threshold."""
    level = np.clip(coverage * (_TONE_LEVELS - 1) + 0.5, 0, _TONE_LEVELS - 1).astype(np.int32)
    target = _screen_tone_curve()[level]
    sharpness = np.float32(period / 1.2)  # 1 / threshold change across a pixel at a dot edge: anti-aliasing
    area = (target - threshold - edge_noise) * sharpness + np.float32(0.5)
    return np.clip(area, 0, 1, out=area)


def paper_fibres(rng: np.random.Generator, shape: tuple[int, int], fibre_px: float) -> np.ndarray:
    """Zero-mean, unit-variance paper structure: fibres in random orientations plus low-frequency mottle.

    Fibres are white noise smeared along lines (`fibre_px` long) at three orientations, synthesised at half
    resolution (they are wider than a print pixel); mottle is the cloudy density variation of the sheet.
    """
    half = (shape[0] // 2 + 1, shape[1] // 2 + 1)
    length = max(3, round(fibre_px / 2) | 1)
    fibres = np.zeros(half, np.float32)
    for angle in rng.uniform(0, 180, 3):
        noise = rng.random(half, dtype=np.float32) - np.float32(0.5)
        fibres += cv2.filter2D(noise, -1, line_kernel(length, angle))
    coarse = (shape[0] // 16 + 2, shape[1] // 16 + 2)
    mottle = cv2.GaussianBlur(rng.random(coarse, dtype=np.float32), (0, 0), 1.0)
    mottle = cv2.resize(
        (mottle - mottle.mean()) / max(float(mottle.std()), 1e-6), shape[::-1], interpolation=cv2.INTER_CUBIC
    )
    fibres = cv2.resize(fibres / max(float(fibres.std()), 1e-6), shape[::-1], interpolation=cv2.INTER_LINEAR)
    structure = fibres + 0.5 * mottle
    return structure / max(float(structure.std()), 1e-6)


def print_reflectance(
    photo_srgb: np.ndarray, period_px: float, strength: float, rng: np.random.Generator, margin_px: int = 0
) -> tuple[np.ndarray, dict]:
    """Linear-RGB reflectance of `photo_srgb` printed with four clustered-dot screens on paper.

    The photo is separated into C, M, Y, K coverages, each screened at its own angle (`period_px` print
    pixels per cell), and the inks multiply the paper's reflectance. Light that enters the paper through one
    ink dot scatters sideways and leaves through another (the Yule-Nielsen effect), so reflectance is
    paper x T x (T blurred by the scattering length), where T is the inks' single-pass transmittance. The
    impure inks and non-zero paper black compress the gamut; paper fibres modulate the white.
    """
    if margin_px:
        photo_srgb = cv2.copyMakeBorder(
            photo_srgb, *(margin_px,) * 4, cv2.BORDER_CONSTANT, value=(1.0, 1.0, 1.0)
        )
    shape = photo_srgb.shape[:2]
    black_generation = float(rng.uniform(0.3, 0.8))
    coverages = separate_cmyk(photo_srgb, black_generation)
    roughness = cv2.GaussianBlur(rng.random(shape, dtype=np.float32) - np.float32(0.5), (0, 0), 0.7) * 0.15
    transmittance = [np.ones(shape, np.float32) for _ in range(3)]
    for ink, coverage in coverages.items():
        phase = (float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(0, 2 * np.pi)))
        threshold = _spot_threshold(shape, period_px, SCREEN_ANGLES_DEG[ink], phase)
        area = halftone(coverage, threshold, period_px, roughness)
        for channel, plane in enumerate(transmittance):
            plane *= 1 - area * np.float32(1 - INK_TRANSMITTANCE[ink][channel])
    transmittance = cv2.merge(transmittance)
    scatter_px = float(rng.uniform(0.2, 0.45)) * period_px
    paper_white = srgb_to_linear(
        np.array([rng.uniform(0.9, 0.97), rng.uniform(0.9, 0.97), rng.uniform(0.9, 1.0)], np.float32)
    )
    fibre_amplitude = min(0.15, float(rng.uniform(0.03, 0.06)) * strength)
    fibres = 1 + fibre_amplitude * paper_fibres(rng, shape, fibre_px=2.5 * PRINT_SUPERSAMPLING)
    reflectance = (
        paper_white * fibres[..., None] * transmittance * cv2.GaussianBlur(transmittance, (0, 0), scatter_px)
    )
    meta = {
        "halftone_period_print_px": _round(period_px),
        "screen_angles_deg": SCREEN_ANGLES_DEG,
        "black_generation": _round(black_generation),
        "ink_scatter_px": _round(scatter_px),
        "paper_white_linear": [_round(v) for v in paper_white],
        "paper_fibre_amplitude": _round(fibre_amplitude),
    }
    return reflectance.astype(np.float32), meta


def _sheet_in_room(
    sampled: np.ndarray,
    ox: np.ndarray,
    oy: np.ndarray,
    sheet_shape: tuple[int, ...],
    view: PlaneView,
    illumination: Illumination,
    strength: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict]:
    """The sampled reflectance lit as a flat sheet (glossy paper adds a broad sheen), in front of a wall."""
    sensor = sampled.shape[0]
    on_paper = rectangle_coverage(ox, oy, 0, 0, sheet_shape[1], sheet_shape[0])[..., None]
    shading = _plane_shading(illumination, view, sensor, falloff=float(rng.uniform(0.0, 0.3)))[..., None]
    glossy = bool(rng.random() < 0.5)
    gloss = min(0.4, float(rng.uniform(0.04, 0.12)) * strength) if glossy else 0.0
    spot = sensor / 2 + illumination.direction[:2] * sensor * 0.5
    sheen = gloss * _soft_blob(sensor, tuple(spot), (sensor * 0.35, sensor * 0.2), float(rng.uniform(0, 180)))
    paper = (sampled * shading + sheen[..., None]) * illumination.rgb
    wall, wall_meta = _background(rng, sensor, illumination)
    radiance = paper * on_paper + wall * (1 - on_paper)
    return radiance, {"paper_finish": "glossy" if glossy else "matte", "gloss": _round(gloss), **wall_meta}


def simulate_print(
    photo_face: FaceRender,
    illumination: Illumination,
    sensor: int,
    zoom: float,
    lens_sigma_px: float,
    strength: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, tuple[int, ...], dict]:
    """A printed photo held up to the camera; returns (radiance, face box in sensor pixels, parameters).

    `zoom` is the camera's magnification of the print relative to the photo's framing (see
    `sample_recapture_zoom`); `lens_sigma_px` is the camera lens's blur, applied before sampling.

    The sheet is flat, so the scene light shades it uniformly (with fall-off across it) instead of
    modelling a face's relief; glossy photo paper adds a broad specular sheen; the camera sees it slightly
    rotated, tilted and out of focus, and may see the paper's white margin and the wall around it.
    """
    photo, photo_meta = photograph(photo_face, rng)
    k = PRINT_SUPERSAMPLING
    printed = cv2.resize(photo, (sensor * k, sensor * k), interpolation=cv2.INTER_LINEAR)
    period_sensor_px = float(rng.uniform(1.1, 1.8)) * strength**0.75
    margin = round(sensor * k * rng.uniform(0.03, 0.1))
    reflectance, print_meta = print_reflectance(printed, period_sensor_px * k, strength, rng, margin)

    view = sample_plane_view(rng, scale=k / zoom, max_rotation_deg=5.0 if zoom > 1 else 10.0)
    centre = (reflectance.shape[1] / 2, reflectance.shape[0] / 2)
    matrix = view.matrix(sensor, centre)
    defocus = float(rng.uniform(0.0, 0.8)) / strength
    fill_factor = float(rng.uniform(0.7, 1.0))
    sampled, ox, oy = recapture_plane(
        reflectance, sensor, matrix, lens_sigma_px / strength, defocus, fill_factor
    )
    radiance, room_meta = _sheet_in_room(
        sampled, ox, oy, reflectance.shape, view, illumination, strength, rng
    )

    box = photo_face.face_box()
    box_on_print = tuple(v * k + margin for v in box)
    meta = {
        "photo": photo_meta,
        "print": print_meta,
        "halftone_period_sensor_px": _round(period_sensor_px),
        "view": view.to_meta(),
        "defocus_radius_px": _round(defocus),
        "pixel_fill_factor": _round(fill_factor),
        "zoom": _round(zoom),
        **room_meta,
    }
    return radiance.astype(np.float32), _box_through(matrix, box_on_print, sensor), meta


# ----------------------------------------------------------------------------------------------------------
# Replay
# ----------------------------------------------------------------------------------------------------------


def subpixel_emission(screen_linear: np.ndarray, black_matrix: float, bgr_order: bool) -> np.ndarray:
    """Expand each display pixel into vertical R, G, B stripes (3x3 cells) with a dark row of black matrix.

    Each stripe emits its channel at 3x the pixel's value so the cell's mean equals the pixel's value; the
    black matrix between rows absorbs `black_matrix` of the bottom row's light.
    """
    cell = np.zeros((SUBPIXELS, SUBPIXELS, 3), np.float32)
    for channel in range(3):
        cell[:, 2 - channel if bgr_order else channel, channel] = SUBPIXELS
    cell[-1] *= 1 - black_matrix
    h, w = screen_linear.shape[:2]
    expanded = np.repeat(np.repeat(screen_linear, SUBPIXELS, axis=0), SUBPIXELS, axis=1)
    return expanded * np.tile(cell, (h, w, 1))


@dataclass(frozen=True)
class Display:
    """An LCD showing the attacker's photo.

    `pitch_ratio` is display pixels per sensor pixel; `gamma` the display's decoding exponent; `leakage` the
    backlight that leaks through black pixels; `white_k` the colour temperature of its white; `peak` its white
    relative to white paper under the brightest studio light; `black_matrix` the share of light the dark
    grid between pixel rows absorbs; `bgr_order` the sub-pixel order.
    """

    pitch_ratio: float
    gamma: float
    leakage: float
    white_k: float
    peak: float
    black_matrix: float
    bgr_order: bool

    def emission(self, photo_srgb: np.ndarray, sensor: int) -> np.ndarray:
        """Radiance of the sub-pixel stripes while showing `photo_srgb`, SUBPIXELS samples per display pixel."""
        screen_px = max(8, round(sensor * self.pitch_ratio))
        shown = np.clip(cv2.resize(photo_srgb, (screen_px, screen_px), interpolation=cv2.INTER_AREA), 0, 1)
        decoded = self.leakage + (1 - self.leakage) * shown**self.gamma
        screen = (self.peak * decoded * blackbody_rgb(self.white_k)).astype(np.float32)
        return subpixel_emission(screen, self.black_matrix, self.bgr_order)

    def to_meta(self) -> dict:
        return {
            "screen_px_per_sensor_px": _round(self.pitch_ratio),
            "display_gamma": _round(self.gamma),
            "backlight_leakage": _round(self.leakage),
            "white_point_k": _round(self.white_k, 1),
            "peak_radiance": _round(self.peak),
            "black_matrix": _round(self.black_matrix),
            "subpixel_order": "BGR" if self.bgr_order else "RGB",
        }


def sample_display(rng: np.random.Generator, illumination: Illumination, strength: float) -> Display:
    """A phone or monitor. Stronger attacks: closer or coarser screens (their grid is resolved) and darker
    black matrices. Auto-brightness dims the screen in dim rooms."""
    return Display(
        pitch_ratio=float(rng.uniform(0.55, 1.6)) / strength**0.5,
        gamma=float(rng.uniform(1.9, 2.5)),
        leakage=float(rng.uniform(0.003, 0.02)),
        white_k=float(rng.uniform(6500, 9300)),
        peak=float(rng.uniform(0.6, 1.3)) * min(1.0, illumination.intensity) ** 0.7,
        black_matrix=min(0.95, float(rng.uniform(0.3, 0.7)) * strength**0.5),
        bgr_order=bool(rng.random() < 0.3),
    )


def _glare(
    rng: np.random.Generator, sensor: int, illumination: Illumination, strength: float
) -> tuple[np.ndarray, float]:
    """The mirror image of a lamp or window in the cover glass (70% of screens), coloured like the room's light."""
    amplitude = min(0.6, float(rng.uniform(0.03, 0.15)) * strength) if rng.random() < 0.7 else 0.0
    centre = (float(rng.uniform(0, sensor)), float(rng.uniform(0, sensor)))
    shape = (sensor * float(rng.uniform(0.08, 0.3)), sensor * float(rng.uniform(0.3, 0.8)))
    blob = amplitude * _soft_blob(sensor, centre, shape, float(rng.uniform(0, 180)))
    return blob[..., None] * illumination.rgb, amplitude


def _screen_in_room(
    sampled: np.ndarray,
    ox: np.ndarray,
    oy: np.ndarray,
    screen_size: int,
    view: PlaneView,
    illumination: Illumination,
    strength: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict]:
    """The sampled screen plus what the room adds: cover-glass reflection and glare, the bezel, the wall."""
    bezel_px = screen_size * 0.08
    on_screen = rectangle_coverage(ox, oy, 0, 0, screen_size, screen_size)[..., None]
    on_device = rectangle_coverage(
        ox, oy, -bezel_px, -bezel_px, screen_size + bezel_px, screen_size + bezel_px
    )
    shading = _plane_shading(illumination, view, sampled.shape[0], falloff=0.1)[..., None]
    glass_reflection = 0.04 * shading * illumination.rgb
    glare, glare_amplitude = _glare(rng, sampled.shape[0], illumination, strength)
    bezel = float(rng.uniform(0.02, 0.08)) * shading * illumination.rgb
    wall, wall_meta = _background(rng, sampled.shape[0], illumination)
    device = sampled * on_screen + bezel * (1 - on_screen) + glass_reflection + glare
    radiance = device * on_device[..., None] + wall * (1 - on_device[..., None])
    return radiance, {"glare": _round(glare_amplitude), **wall_meta}


def simulate_replay(
    photo_face: FaceRender,
    illumination: Illumination,
    sensor: int,
    zoom: float,
    lens_sigma_px: float,
    strength: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, tuple[int, ...], dict]:
    """The target's photo shown on an LCD and filmed; returns (radiance, face box in sensor pixels, parameters).

    The display decodes the photo with its own gamma, adds backlight leakage (raised blacks) and its own,
    usually bluer, white point; it emits light instead of reflecting the scene's, so only a weak diffuse
    reflection and a specular glare of the room's light sit on top. The camera resamples the stripe pattern
    at `screen_px_per_sensor_px` and a small rotation: moire follows. `zoom` and `lens_sigma_px` are as in
    `simulate_print`.
    """
    photo, photo_meta = photograph(photo_face, rng)
    display = sample_display(rng, illumination, strength)
    emission = display.emission(photo, sensor)
    object_px_per_sensor_px = SUBPIXELS * display.pitch_ratio / zoom
    view = sample_plane_view(rng, object_px_per_sensor_px, max_rotation_deg=5.0 if zoom > 1 else 10.0)
    matrix = view.matrix(sensor, (emission.shape[1] / 2, emission.shape[0] / 2))
    defocus = float(rng.uniform(0.0, 0.6)) / strength
    fill_factor = float(rng.uniform(0.7, 1.0))
    sampled, ox, oy = recapture_plane(
        emission, sensor, matrix, lens_sigma_px / strength, defocus, fill_factor
    )
    radiance, room_meta = _screen_in_room(
        sampled, ox, oy, emission.shape[0], view, illumination, strength, rng
    )
    box = tuple(v * display.pitch_ratio * SUBPIXELS for v in photo_face.face_box())
    meta = {
        "photo": photo_meta,
        **display.to_meta(),
        "zoom": _round(zoom),
        "view": view.to_meta(),
        "defocus_radius_px": _round(defocus),
        "pixel_fill_factor": _round(fill_factor),
        **room_meta,
    }
    return radiance.astype(np.float32), _box_through(matrix, box, sensor), meta


# ----------------------------------------------------------------------------------------------------------
# Masks and partial attacks
# ----------------------------------------------------------------------------------------------------------


def _local_polar(face: FaceRender, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (radius, angle) in the face ellipse's frame: radius 1 on the ellipse."""
    cx, cy, ax, ay, roll = face.ellipse
    theta = np.deg2rad(roll)
    grid = np.arange(size, dtype=np.float32) + 0.5
    x, y = grid[None, :] - cx, grid[:, None] - cy
    u = (np.cos(theta) * x + np.sin(theta) * y) / ax
    v = (-np.sin(theta) * x + np.cos(theta) * y) / ay
    return np.sqrt(u**2 + v**2), np.arctan2(v, u)


def _wobbly_region(face: FaceRender, extent: float, wobble: float, rng: np.random.Generator) -> np.ndarray:
    """Anti-aliased face-shaped region whose outline deviates from the ellipse by low-order harmonics.

    Hand-cut and hand-fitted masks never follow the face contour exactly; the harmonics (orders 2 to 5)
    are that deviation.
    """
    radius, angle = _local_polar(face, face.size)
    outline = np.full_like(radius, extent)
    for order in range(2, 6):
        outline += wobble * rng.uniform(-1, 1) / order * np.cos(order * angle + rng.uniform(0, 2 * np.pi))
    pixels_per_unit = min(face.ellipse[2], face.ellipse[3])
    return np.clip((outline - radius) * pixels_per_unit + 0.5, 0, 1).astype(np.float32)


def _ellipse_region(size: int, centre: np.ndarray, axes: tuple[float, float], angle_deg: float) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    shift = 4
    scale = 1 << shift
    cv2.ellipse(
        mask,
        (round(centre[0] * scale), round(centre[1] * scale)),
        (max(1, round(axes[0] * scale)), max(1, round(axes[1] * scale))),
        angle_deg,
        0,
        360,
        255,
        -1,
        cv2.LINE_AA,
        shift,
    )
    return mask.astype(np.float32) / 255


def _rounded_rectangle(
    size: int, centre: np.ndarray, half: tuple[float, float], angle_deg: float, wobble_px: float, rng
) -> np.ndarray:
    """A hand-cut rounded rectangle: a superellipse (exponent 5) with a slightly wavy outline."""
    t = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = half[0] * np.sign(c) * np.abs(c) ** 0.4
    y = half[1] * np.sign(s) * np.abs(s) ** 0.4
    wave = wobble_px * np.sin(t * rng.integers(2, 5) + rng.uniform(0, 2 * np.pi))
    x, y = x + wave * c, y + wave * s
    theta = np.deg2rad(angle_deg)
    points = np.stack(
        [
            centre[0] + np.cos(theta) * x - np.sin(theta) * y,
            centre[1] + np.sin(theta) * x + np.cos(theta) * y,
        ],
        1,
    )
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return mask.astype(np.float32) / 255


def _edge_band(region: np.ndarray, width_px: float) -> np.ndarray:
    """Peaks (1) on the region's outline, fading over `width_px`: where cut edges and seams show."""
    soft = cv2.GaussianBlur(region, (0, 0), max(width_px, 0.3))
    return np.clip(4 * soft * (1 - soft), 0, 1)


def _cast_shadow(
    region: np.ndarray, illumination: Illumination, offset_px: float, blur_px: float
) -> np.ndarray:
    """Shadow that a layer standing off the face casts beside its edge, away from the light."""
    dx, dy = -illumination.direction[:2] * offset_px
    shifted = cv2.warpAffine(region, np.float32([[1, 0, dx], [0, 1, dy]]), region.shape[::-1])
    return cv2.GaussianBlur(shifted, (0, 0), blur_px) * (1 - region)


def _eye_holes(face: FaceRender, size_factor: float) -> np.ndarray:
    eye_distance = float(np.linalg.norm(face.landmarks["right_eye"] - face.landmarks["left_eye"]))
    holes = np.zeros((face.size, face.size), np.float32)
    for eye in ("left_eye", "right_eye"):
        axes = (0.28 * eye_distance * size_factor, 0.14 * eye_distance * size_factor)
        holes = np.maximum(holes, _ellipse_region(face.size, face.landmarks[eye], axes, face.ellipse[4]))
    return holes


def _printed_albedo(
    face_srgb: np.ndarray, strength: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict]:
    """Reflectance of a photo printed at 2x and seen at the face's resolution (paper masks, partials)."""
    size = face_srgb.shape[0]
    upsampled = cv2.resize(face_srgb, (size * 2, size * 2), interpolation=cv2.INTER_LINEAR)
    period = float(rng.uniform(1.1, 1.8)) * strength**0.75 * 2
    reflectance, meta = print_reflectance(upsampled, period, strength, rng)
    return cv2.resize(reflectance, (size, size), interpolation=cv2.INTER_AREA), meta


def _cylinder_normals(face: FaceRender, bend: float) -> np.ndarray:
    """A sheet bent around a vertical axis: normals turn sideways only, unlike a face's double curvature."""
    cx, _, ax, _, roll = face.ellipse
    grid = (np.arange(face.size, dtype=np.float32) + 0.5 - cx) / (ax * 1.3)
    nx = np.clip(grid * bend, -0.95, 0.95)
    nx = np.broadcast_to(nx[None, :], (face.size, face.size))
    theta = np.deg2rad(roll)
    normals = np.stack([nx * np.cos(theta), nx * np.sin(theta), np.sqrt(1 - nx**2)], axis=-1)
    return normals.astype(np.float32)


def _paper_mask_surface(
    target: FaceRender,
    region: np.ndarray,
    illumination: Illumination,
    strength: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict]:
    """The target's printed photo bent like a cylinder; its cut edge catches the light."""
    albedo, print_meta = _printed_albedo(target.srgb, strength, rng)
    bend = float(rng.uniform(0.4, 0.9))
    shading = lambert_shading(_cylinder_normals(target, bend), illumination)
    cut_edge_glint = 0.25 * min(strength, 2.0) * _edge_band(region, 0.8)
    surface = albedo * (shading * (1 + cut_edge_glint))[..., None] * illumination.rgb
    return surface, {"print": print_meta, "bend": _round(bend)}


def _moulded_mask_surface(
    material: str,
    target: FaceRender,
    region: np.ndarray,
    illumination: Illumination,
    strength: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict]:
    """A rigid (painted resin) or silicone cast of the target's face: its relief, but not its skin.

    Both lose the skin's micro-texture (a blurred albedo). Rigid: desaturated paint under a glossy clear
    coat (a tight Blinn-Phong highlight). Silicone: light scattered under the surface blurs the shading and
    reddens the colour; a broad waxy sheen.
    """
    eye_distance = float(np.linalg.norm(target.landmarks["right_eye"] - target.landmarks["left_eye"]))
    rigid = material == "rigid"
    blur = float(rng.uniform(1.0, 2.5) if rigid else rng.uniform(0.8, 1.6)) * strength
    saturation = float(rng.uniform(0.5, 0.85) if rigid else rng.uniform(1.0, 1.25))
    shininess = float(rng.uniform(20, 60) if rigid else rng.uniform(5, 10))
    gloss_range = (0.15, 0.35) if rigid else (0.06, 0.14)
    gloss = min(0.8 if rigid else 0.5, float(rng.uniform(*gloss_range)) * strength)
    tint = np.ones(3, np.float32) if rigid else np.array([1.06, 0.96, 0.93], np.float32)
    albedo = cv2.GaussianBlur(srgb_to_linear(target.srgb), (0, 0), blur)
    grey = albedo.mean(axis=-1, keepdims=True)
    albedo = np.clip(grey + (albedo - grey) * saturation, 0, None) * tint
    shading = lambert_shading(target.normals, illumination)
    if not rigid:
        shading = cv2.GaussianBlur(shading, (0, 0), eye_distance * 0.08)
    highlight = gloss * specular_shading(target.normals, illumination, shininess) * region
    surface = (albedo * shading[..., None] + highlight[..., None]) * illumination.rgb
    meta = {
        "detail_blur_px": _round(blur),
        "saturation": _round(saturation),
        "shininess": _round(shininess),
        "gloss": _round(gloss),
    }
    return surface, meta


# How each material sits on the wearer: outline extent and wobble (in face-ellipse radii), how far it stands
# off the skin (cast-shadow offset, in eye distances), how dark its rim seam is (at strength 1), and how much
# light reaches the wearer's eyes behind the holes.
_MASK_FIT = {
    "paper": {"extent": 0.98, "wobble": 0.06, "stand_off": 0.05, "seam": 0.0, "eye_light": 0.85},
    "rigid": {"extent": 1.04, "wobble": 0.03, "stand_off": 0.02, "seam": 0.45, "eye_light": 0.45},
    "silicone": {"extent": 1.12, "wobble": 0.05, "stand_off": 0.02, "seam": 0.2, "eye_light": 0.75},
}


def simulate_mask(
    material: str,
    target: FaceRender,
    wearer: FaceRender,
    illumination: Illumination,
    strength: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict]:
    """Someone (`wearer`) wearing a mask of `target`'s face; returns (radiance, parameters).

    * paper: the target's photo printed (halftone, fibres) and cut out along a wobbly outline with eye
      holes, bent like a cylinder so it is shaded unlike a face; its cut edge catches light and its
      stand-off casts a shadow on the wearer's skin.
    * rigid (resin/plastic): the face's relief, but painted: skin micro-texture lost, desaturated colour,
      a glossy clear-coat highlight; a dark groove at its rim; eyes recessed in shadow behind the holes.
    * silicone: soft, skin-like, yet light diffuses under the surface (blurred shading, reddish tint), a
      waxy sheen, pores missing, and a faint seam where it ends on the wearer's skin.
    """
    if material not in _MASK_FIT:
        raise ValueError(f"unknown mask material '{material}'; expected one of {', '.join(_MASK_FIT)}")
    fit = _MASK_FIT[material]
    eye_distance = float(np.linalg.norm(target.landmarks["right_eye"] - target.landmarks["left_eye"]))
    region = _wobbly_region(target, fit["extent"], fit["wobble"], rng)
    hole_size = float(rng.uniform(0.8, 1.1))
    holes = _eye_holes(target, hole_size)
    if material == "paper":
        surface, material_meta = _paper_mask_surface(target, region, illumination, strength, rng)
    else:
        surface, material_meta = _moulded_mask_surface(material, target, region, illumination, strength, rng)

    stand_off = eye_distance * fit["stand_off"]
    shadow = _cast_shadow(region, illumination, offset_px=stand_off, blur_px=stand_off * 0.6 + 1.0)
    shadow_depth = 0.5 * min(strength, 1.5)
    behind_holes = cv2.GaussianBlur(holes, (0, 0), eye_distance * 0.04) * region
    skin = light_face(wearer, illumination)
    skin *= ((1 - shadow_depth * shadow) * (1 - (1 - fit["eye_light"]) * behind_holes))[..., None]
    cover = (region * (1 - holes))[..., None]
    radiance = skin * (1 - cover) + surface * cover
    seam = min(0.9, fit["seam"] * strength)
    radiance *= (1 - seam * _edge_band(region, 0.7))[..., None]
    meta = {
        "material": material,
        "outline_extent": fit["extent"],
        "outline_wobble": fit["wobble"],
        "eye_hole_scale": _round(hole_size),
        "eye_light": fit["eye_light"],
        "cast_shadow": _round(shadow_depth),
        "seam_darkening": _round(seam),
        **material_meta,
    }
    return radiance.astype(np.float32), meta


PARTS = ("eye", "paperglasses", "mouth")


def _partial_region(kind: str, face: FaceRender, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(paper region, printed dark frame) of a partial attack, following the face's landmarks."""
    left, right, mouth = (face.landmarks[k] for k in ("left_eye", "right_eye", "mouth"))
    eye_distance = float(np.linalg.norm(right - left))
    roll = face.ellipse[4]
    size = face.size
    frame = np.zeros((size, size), np.float32)
    if kind == "eye":
        half = (eye_distance * rng.uniform(0.85, 1.05), eye_distance * rng.uniform(0.22, 0.32))
        region = _rounded_rectangle(size, (left + right) / 2, half, roll, eye_distance * 0.02, rng)
    elif kind == "mouth":
        half = (eye_distance * rng.uniform(0.5, 0.65), eye_distance * rng.uniform(0.2, 0.28))
        region = _rounded_rectangle(size, mouth, half, roll, eye_distance * 0.02, rng)
    else:  # paper glasses: two lenses, a bridge and the arms, with a printed dark frame around the lenses
        axes = (eye_distance * rng.uniform(0.34, 0.42), eye_distance * rng.uniform(0.24, 0.3))
        lenses = np.maximum(_ellipse_region(size, left, axes, roll), _ellipse_region(size, right, axes, roll))
        inner = (axes[0] * 0.82, axes[1] * 0.78)
        openings = np.maximum(
            _ellipse_region(size, left, inner, roll), _ellipse_region(size, right, inner, roll)
        )
        bridge = _rounded_rectangle(
            size, (left + right) / 2, (eye_distance * 0.2, eye_distance * 0.05), roll, 0, rng
        )
        arms = np.zeros_like(lenses)
        for eye, side in ((left, -1), (right, 1)):
            direction = np.array([np.cos(np.deg2rad(roll)), np.sin(np.deg2rad(roll))]) * side
            arms = np.maximum(
                arms,
                _rounded_rectangle(
                    size,
                    eye + direction * eye_distance * 0.7,
                    (eye_distance * 0.35, eye_distance * 0.05),
                    roll,
                    0,
                    rng,
                ),
            )
        region = np.maximum(np.maximum(lenses, bridge), arms)
        frame = np.clip(region - openings, 0, 1)
    return region, frame


def simulate_partial(
    kind: str,
    live: FaceRender,
    photo_face: FaceRender,
    illumination: Illumination,
    strength: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict]:
    """A live face with a printed part on top: an eye strip, paper glasses or a mouth patch.

    The patch is printed from a photo of the same person (`photo_face`, same pose, other expression and
    light), placed slightly off register; it is flat, so it is shaded as a plane, catches light at its cut
    edge and casts a thin shadow on the skin.
    """
    if kind not in PARTS:
        raise ValueError(f"unknown partial attack '{kind}'; expected one of {', '.join(PARTS)}")
    skin = light_face(live, illumination)
    photo, photo_meta = photograph(photo_face, rng)
    albedo, print_meta = _printed_albedo(photo, strength, rng)
    shift = rng.uniform(-0.02, 0.02, 2) * live.size
    albedo = cv2.warpAffine(
        albedo,
        np.float32([[1, 0, shift[0]], [0, 1, shift[1]]]),
        (live.size, live.size),
        borderMode=cv2.BORDER_REFLECT,
    )
    region, frame = _partial_region(kind, live, rng)
    frame_ink = float(rng.uniform(0.05, 0.2))
    albedo = albedo * (1 - frame[..., None] * (1 - frame_ink))
    view = PlaneView(1.0, 0.0, float(rng.uniform(-0.1, 0.1)), float(rng.uniform(-0.1, 0.1)), (0.0, 0.0))
    shading = _plane_shading(illumination, view, live.size, falloff=0.1)
    patch = albedo * shading[..., None] * illumination.rgb
    eye_distance = float(np.linalg.norm(live.landmarks["right_eye"] - live.landmarks["left_eye"]))
    cut_edge_glint = 0.25 * min(strength, 2.0) * _edge_band(region, 0.7)
    patch *= (1 + cut_edge_glint)[..., None]
    shadow = _cast_shadow(region, illumination, offset_px=eye_distance * 0.04, blur_px=eye_distance * 0.03)
    skin *= (1 - 0.5 * min(strength, 1.5) * shadow)[..., None]
    radiance = skin * (1 - region[..., None]) + patch * region[..., None]
    meta = {
        "kind": kind,
        "photo": photo_meta,
        "print": print_meta,
        "register_offset_px": [_round(v) for v in shift],
        "frame_ink_reflectance": _round(frame_ink) if kind == "paperglasses" else None,
        "keystone": [_round(view.keystone_x), _round(view.keystone_y)],
    }
    return radiance.astype(np.float32), meta

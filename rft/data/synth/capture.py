"""Capture physics shared by live faces and attacks: colour encoding, illumination and the camera.

Every synthetic image, live or attack, ends in `capture`, so capture conditions (light level and colour,
sensor noise, resolution, blur, JPEG) are never a shortcut that separates the classes. The camera works on
*scene radiance* in linear RGB, in units where white paper under the brightest studio light is about 1:

    radiance -> lens blur -> Bayer colour filter array -> photon shot noise + read noise (in electrons)
             -> white balance (partly correcting the illuminant) -> auto-exposure -> 16-bit ADC
             -> bilinear demosaicing -> sRGB tone curve -> 8 bit -> JPEG -> resize to the crop size

Dim scenes yield few photo-electrons per pixel, so auto-exposure's gain makes them noisy; cheap cameras add
low resolution, stronger blur, heavier JPEG and a poorer white balance.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Wavelength samples (nm) and Gaussian spectral sensitivities of a generic camera's R, G, B filters.
_WAVELENGTHS_NM = np.linspace(400.0, 700.0, 61)
_SENSITIVITY_CENTRES_NM = np.array([600.0, 540.0, 455.0])
_SENSITIVITY_WIDTHS_NM = np.array([35.0, 35.0, 28.0])
_REFERENCE_WHITE_K = 6500.0


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """Undo the sRGB transfer curve (values in [0, 1])."""
    srgb = np.clip(srgb, 0.0, 1.0)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Apply the sRGB transfer curve (values clipped to [0, 1])."""
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055).astype(
        np.float32
    )


def _planck(wavelength_nm: np.ndarray, kelvin: float) -> np.ndarray:
    """Black-body spectral radiance (arbitrary scale) from Planck's law."""
    h, c, k = 6.626e-34, 2.998e8, 1.381e-23
    lam = wavelength_nm * 1e-9
    return 1.0 / (lam**5 * np.expm1(h * c / (lam * k * kelvin)))


def _camera_response(kelvin: float) -> np.ndarray:
    spectrum = _planck(_WAVELENGTHS_NM, kelvin)
    filters = np.exp(
        -0.5
        * ((_WAVELENGTHS_NM[None, :] - _SENSITIVITY_CENTRES_NM[:, None]) / _SENSITIVITY_WIDTHS_NM[:, None])
        ** 2
    )
    return filters @ spectrum


def blackbody_rgb(kelvin: float) -> np.ndarray:
    """Camera RGB of a black-body light at `kelvin`, relative to 6500 K daylight, green normalised to 1.

    Integrates Planck's law against Gaussian filter sensitivities, so a 2700 K tungsten lamp comes out
    orange (R/B about 3) and a 9000 K screen white point bluish, without a lookup table.
    """
    rgb = _camera_response(kelvin) / _camera_response(_REFERENCE_WHITE_K)
    return (rgb / rgb[1]).astype(np.float32)


@dataclass(frozen=True)
class Illumination:
    """A directional light plus diffuse ambient light.

    `intensity` is the illuminance relative to a bright studio (1.0); `azimuth_deg` is the direction the light
    comes from in the image plane (0 = from the right, 90 = from below); `elevation_deg` is the angle between
    the light and the camera axis (0 = frontal, above 90 = behind the subject); `ambient` is the share of
    light that arrives from all directions.
    """

    intensity: float
    cct_kelvin: float
    azimuth_deg: float
    elevation_deg: float
    ambient: float

    @property
    def rgb(self) -> np.ndarray:
        """Irradiance per camera channel."""
        return self.intensity * blackbody_rgb(self.cct_kelvin)

    @property
    def direction(self) -> np.ndarray:
        """Unit vector towards the light (x right, y down, z towards the camera)."""
        az, el = np.deg2rad(self.azimuth_deg), np.deg2rad(self.elevation_deg)
        return np.array([np.sin(el) * np.cos(az), np.sin(el) * np.sin(az), np.cos(el)], dtype=np.float32)

    def label(self) -> str:
        """CelebA-Spoof-style illumination attribute: strong, normal, dark or back."""
        if self.elevation_deg > 90:
            return "back"
        if self.intensity >= 0.9:
            return "strong"
        return "normal" if self.intensity >= 0.3 else "dark"


def lambert_shading(normals: np.ndarray, illumination: Illumination) -> np.ndarray:
    """Diffuse (Lambertian) shading: ambient + (1 - ambient) * max(0, n . l)."""
    cosine = np.clip(normals @ illumination.direction, 0.0, None)
    return (illumination.ambient + (1.0 - illumination.ambient) * cosine).astype(np.float32)


def specular_shading(normals: np.ndarray, illumination: Illumination, shininess: float) -> np.ndarray:
    """Blinn-Phong highlight for a viewer on the z axis: max(0, n . h) ** shininess."""
    half = illumination.direction + np.array([0.0, 0.0, 1.0], dtype=np.float32)
    half /= max(float(np.linalg.norm(half)), 1e-6)
    return (np.clip(normals @ half, 0.0, None) ** shininess).astype(np.float32)


@dataclass(frozen=True)
class Camera:
    """The capturing camera.

    `resolution_scale` is sensor pixels per output pixel (below 1: a low-resolution camera whose crop is
    upsampled); `full_well` is photo-electrons collected from white paper at intensity 1 (sets shot noise);
    `read_noise` is in electrons; `optics_blur_px` is the lens PSF's sigma in sensor pixels; `wb_residual`
    is the share of the illuminant colour that auto white balance leaves in (0 = perfect).
    """

    resolution_scale: float
    full_well: float
    read_noise: float
    optics_blur_px: float
    jpeg_quality: int
    wb_residual: float
    exposure_target: float = 0.2

    def label(self) -> str:
        """CelebA-Spoof-style sensor quality attribute: high, middle or low."""
        if self.resolution_scale >= 0.85 and self.jpeg_quality >= 85 and self.full_well >= 5000:
            return "high"
        if self.resolution_scale < 0.6 or self.jpeg_quality < 60:
            return "low"
        return "middle"


@dataclass(frozen=True)
class CaptureConditions:
    """Ranges that illumination and camera parameters are drawn from, uniformly, for one domain."""

    intensity: tuple[float, float]
    cct_kelvin: tuple[float, float]
    elevation_deg: tuple[float, float]
    ambient: tuple[float, float]
    backlight_probability: float
    resolution_scale: tuple[float, float]
    full_well: tuple[float, float]
    read_noise: tuple[float, float]
    optics_blur_px: tuple[float, float]
    jpeg_quality: tuple[int, int]
    wb_residual: tuple[float, float]


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def sample_illumination(conditions: CaptureConditions, rng: np.random.Generator) -> Illumination:
    """Draw a light; with `backlight_probability` the light is behind the subject (rim light, dark face)."""
    backlit = rng.random() < conditions.backlight_probability
    elevation = _uniform(rng, (105.0, 150.0)) if backlit else _uniform(rng, conditions.elevation_deg)
    return Illumination(
        intensity=_uniform(rng, conditions.intensity),
        cct_kelvin=_uniform(rng, conditions.cct_kelvin),
        azimuth_deg=_uniform(rng, (0.0, 360.0)),
        elevation_deg=elevation,
        ambient=_uniform(rng, conditions.ambient),
    )


def sample_camera(conditions: CaptureConditions, rng: np.random.Generator) -> Camera:
    return Camera(
        resolution_scale=_uniform(rng, conditions.resolution_scale),
        full_well=_uniform(rng, conditions.full_well),
        read_noise=_uniform(rng, conditions.read_noise),
        optics_blur_px=_uniform(rng, conditions.optics_blur_px),
        jpeg_quality=int(rng.integers(conditions.jpeg_quality[0], conditions.jpeg_quality[1] + 1)),
        wb_residual=_uniform(rng, conditions.wb_residual),
    )


def sensor_size(image_size: int, camera: Camera) -> int:
    """Side in sensor pixels of the region the output crop covers (even, for the 2x2 Bayer pattern)."""
    return max(16, 2 * round(image_size * camera.resolution_scale / 2))


def lens_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Blur by a lens point-spread function: a sharp core (60% of the light, sigma/3) plus a halo (sigma).

    Real lens MTFs fall steeply and then keep a long tail up to and past the sensor's Nyquist frequency;
    a single Gaussian has no such tail and would erase, rather than alias, detail finer than a pixel.
    """
    if sigma_px <= 0:
        return image
    core = cv2.GaussianBlur(image, (0, 0), sigma_px / 3)
    halo = cv2.GaussianBlur(image, (0, 0), sigma_px)
    return cv2.addWeighted(core, 0.6, halo, 0.4, 0.0)


def _bayer_mosaic(rgb: np.ndarray) -> np.ndarray:
    """Keep, per photosite, the channel its RGGB colour filter passes."""
    mosaic = np.empty(rgb.shape[:2], dtype=np.float32)
    mosaic[0::2, 0::2] = rgb[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = rgb[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = rgb[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return mosaic


def _per_site(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Expand a per-channel (R, G, B) value onto the RGGB photosite grid."""
    grid = np.empty(shape, dtype=np.float32)
    grid[0::2, 0::2] = values[0]
    grid[0::2, 1::2] = values[1]
    grid[1::2, 0::2] = values[1]
    grid[1::2, 1::2] = values[2]
    return grid


def _central_mean(image: np.ndarray) -> float:
    """Mean of the central half of the frame, where auto-exposure meters (the face)."""
    h, w = image.shape[:2]
    return float(image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].mean())


def _tone_curve(linear: np.ndarray) -> np.ndarray:
    """sRGB encoding with a gentle highlight shoulder, as camera pipelines roll off highlights."""
    return linear_to_srgb(linear / (1.0 + 0.15 * linear) * 1.15)


def jpeg_roundtrip(srgb_u8: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode an RGB uint8 image as JPEG at `quality` (1-100)."""
    ok, encoded = cv2.imencode(".jpg", srgb_u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode a JPEG")
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].copy()


def capture(
    radiance: np.ndarray,
    illumination: Illumination,
    camera: Camera,
    image_size: int,
    rng: np.random.Generator,
    lens_blur_applied: bool = False,
) -> np.ndarray:
    """Photograph linear scene `radiance` (sensor-sized, HxWx3) and return the uint8 sRGB crop.

    `lens_blur_applied` says the lens PSF was already applied before sampling (flat attacks rendered at a
    higher resolution, where blur must precede sampling for aliasing to be right).

    Shot noise is Poisson in the electron count (approximated by a Gaussian with variance = mean) and grows,
    relative to the signal, as the light dims; auto-exposure then scales the metered level to
    `exposure_target`, amplifying that noise.
    """
    if not lens_blur_applied:
        radiance = lens_blur(radiance, camera.optics_blur_px)
    electrons = np.clip(_bayer_mosaic(radiance), 0.0, None) * camera.full_well
    noise_sigma = np.sqrt(electrons + camera.read_noise**2)
    electrons = electrons + rng.standard_normal(electrons.shape, dtype=np.float32) * noise_sigma
    wb_gains = blackbody_rgb(illumination.cct_kelvin) ** -(1.0 - camera.wb_residual)
    balanced = electrons * _per_site(wb_gains / wb_gains[1], electrons.shape)
    exposed = balanced * (camera.exposure_target / max(_central_mean(balanced), 1e-6))
    raw = np.round(np.clip(exposed, 0.0, 1.0) * 65535).astype(np.uint16)
    linear = cv2.cvtColor(raw, cv2.COLOR_BayerBG2RGB).astype(np.float32) / 65535  # RGGB -> RGB
    srgb_u8 = np.round(_tone_curve(linear) * 255).astype(np.uint8)
    srgb_u8 = jpeg_roundtrip(srgb_u8, camera.jpeg_quality)
    if srgb_u8.shape[0] != image_size:
        interpolation = cv2.INTER_CUBIC if srgb_u8.shape[0] < image_size else cv2.INTER_AREA
        srgb_u8 = cv2.resize(srgb_u8, (image_size, image_size), interpolation=interpolation)
    return srgb_u8

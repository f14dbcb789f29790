"""Frequency tools: FFTTool and WaveletTransformTool.

Paper 003, section 3.1.1: "The FFT and Wavelet Transform operators analyze frequency domain
representations, revealing abnormal spectral distributions typically caused by display and print attacks."
Recapturing a screen or a print overlays a periodic grid (pixel lattice, halftone dots) that a face does not
have; it shows up as isolated peaks in the spectrum and as structured energy in the wavelet detail bands.
"""

from __future__ import annotations

import numpy as np
import pywt

from rft.tools.arguments import FFTArguments, WaveletTransformArguments
from rft.tools.images import gray_to_rgb, magnitude_to_uint8, rgb_to_gray, stretch_to_uint8

# Coefficients of a uint8 image that vary by less than a grey level are floating-point rounding (filters
# other than Haar do not cancel exactly on flat areas), not content: they are drawn dark, not stretched.
MIN_VISIBLE_COEFFICIENT = 1.0


def fft_spectrum(image: np.ndarray, arguments: FFTArguments) -> np.ndarray:
    """The centred log-magnitude spectrum of the image's luma, min-max stretched to 0-255, as RGB.

    The zero frequency sits at pixel (H // 2, W // 2); a horizontal frequency of k cycles per image width
    appears k pixels left and right of it. The logarithm is what makes a moire peak visible next to the
    direct-current term, which is orders of magnitude larger. No window is applied, so the image borders
    add the usual bright cross through the centre; periodic artifacts appear off that cross.
    """
    gray = rgb_to_gray(image).astype(np.float32)
    spectrum = np.fft.fftshift(np.fft.fft2(gray))
    return gray_to_rgb(stretch_to_uint8(np.log1p(np.abs(spectrum))))


def wavelet_mosaic(image: np.ndarray, arguments: WaveletTransformArguments) -> np.ndarray:
    """A single-level 2-D DWT of the image's luma as a 2x2 mosaic the size of the image, as RGB.

    Quadrants, in pywt's naming: approximation (top left, a half-size copy of the image), horizontal detail
    (top right, responds to horizontal edges), vertical detail (bottom left) and diagonal detail (bottom
    right). The approximation is min-max stretched. Each detail band shows its coefficients' magnitude
    scaled to its own maximum: detail energy is far smaller than the approximation's and would be invisible
    on a common scale, and a noise mismatch shows as a patch brighter or darker than the rest of the band.
    Periodization makes every band exactly ceil(H/2) x ceil(W/2), so the mosaic matches the image (for an
    odd side its last row or column is dropped).
    """
    gray = rgb_to_gray(image).astype(np.float32)
    approximation, details = pywt.dwt2(gray, arguments.wavelet, mode="periodization")
    horizontal, vertical, diagonal = (
        magnitude_to_uint8(np.abs(band), min_peak=MIN_VISIBLE_COEFFICIENT) for band in details
    )
    mosaic = np.block(
        [
            [stretch_to_uint8(approximation, min_span=MIN_VISIBLE_COEFFICIENT), horizontal],
            [vertical, diagonal],
        ]
    )
    return gray_to_rgb(np.ascontiguousarray(mosaic[: image.shape[0], : image.shape[1]]))

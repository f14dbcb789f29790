"""Structure tools: EdgeDetectionTool (Laplacian) and HOGTool.

Paper 003, section 3.1.1: "The Laplacian Edge Detection and HOG operators emphasize structural boundaries
and reflectance discontinuities, helping to expose mask edges and screen boundary artifacts." A mask's
cut-outs, a paper's edge or a screen bezel are straight, high-contrast boundaries that a live face does not
have, and a flat print or screen lacks the smoothly varying gradients of a 3-D face.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
from skimage.draw import line

from rft.tools.arguments import EdgeDetectionArguments, HOGArguments
from rft.tools.errors import ToolArgumentError
from rft.tools.images import gray_to_rgb, magnitude_to_uint8, rgb_to_gray

MAX_GRADIENT = 255  # the largest central difference of uint8 pixels
GRADIENT_VALUES = 2 * MAX_GRADIENT + 1


def laplacian_edges(image: np.ndarray, arguments: EdgeDetectionArguments) -> np.ndarray:
    """The absolute Laplacian of the image's luma, scaled so that its maximum is 255, as RGB.

    The Laplacian responds to every change of brightness, at any orientation, and is zero on flat and
    linearly shaded areas; borders are mirrored, so the image frame itself draws no edge.
    """
    gray = rgb_to_gray(image)
    response = cv2.Laplacian(gray, cv2.CV_32F, ksize=arguments.ksize)
    return gray_to_rgb(magnitude_to_uint8(np.abs(response)))


def hog_picture(image: np.ndarray, arguments: HOGArguments) -> np.ndarray:
    """The HOG glyph picture of the image's luma, scaled so that its maximum is 255, as RGB.

    Each cell holds one line per orientation bin, drawn along the edge direction (perpendicular to the
    gradient) with a brightness proportional to the bin's gradient energy: the picture of
    `skimage.feature.hog(..., visualize=True)`, computed without its per-line Python loop, which alone
    takes ~100 ms for a 224x224 image on one core. Pixels right of or below the last whole cell stay black.
    """
    gray = rgb_to_gray(image)
    cell = arguments.pixels_per_cell
    if min(gray.shape) < cell:
        raise ToolArgumentError(
            "HOGTool", f"pixels_per_cell={cell} exceeds the {gray.shape[0]}x{gray.shape[1]} image"
        )
    histograms = cell_orientation_histograms(gray, arguments.orientations, cell)
    drawn = render_cells(histograms, cell_glyphs(arguments.orientations, cell))
    picture = np.zeros(gray.shape, dtype=np.float64)
    picture[: drawn.shape[0], : drawn.shape[1]] = drawn
    return gray_to_rgb(magnitude_to_uint8(picture))


def cell_orientation_histograms(gray: np.ndarray, orientations: int, cell: int) -> np.ndarray:
    """Unsigned gradient-orientation histograms of the whole `cell` x `cell` cells of a uint8 image, shape
    (rows of cells, columns of cells, orientations): each bin is the mean gradient magnitude per pixel of
    the cell over the pixels whose orientation falls in it.

    This reproduces skimage.feature.hog's cell histograms (before block normalisation): central
    differences with zero gradient on the image border, orientation in [0, 180) degrees, bin i holding
    [i, i + 1) * 180 / orientations. The gradients of a uint8 image are integer pairs in [-255, 255], so
    magnitude and bin are looked up in tables computed once with skimage's formulas (`_gradient_tables`)
    instead of evaluating hypot and arctan2 per pixel, which took ~9 ms of a 224x224 call.
    """
    image = gray.astype(np.int32)
    g_row, g_col = np.zeros_like(image), np.zeros_like(image)
    g_row[1:-1, :] = image[2:, :] - image[:-2, :]
    g_col[:, 1:-1] = image[:, 2:] - image[:, :-2]
    rows, cols = gray.shape[0] // cell, gray.shape[1] // cell
    g_row, g_col = g_row[: rows * cell, : cols * cell], g_col[: rows * cell, : cols * cell]
    gradient_key = (g_row + MAX_GRADIENT) * GRADIENT_VALUES + (g_col + MAX_GRADIENT)
    magnitudes, bins = _gradient_tables(orientations)
    cell_index = (np.arange(rows * cell)[:, None] // cell) * cols + np.arange(cols * cell)[None, :] // cell
    sums = np.bincount(
        (cell_index * (orientations + 1) + bins[gradient_key]).ravel(),
        weights=magnitudes[gradient_key].ravel(),
        minlength=rows * cols * (orientations + 1),
    )
    return sums.reshape(rows, cols, orientations + 1)[:, :, :orientations] / (cell * cell)


@functools.cache
def _gradient_tables(orientations: int) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude and orientation bin of every integer gradient (g_row, g_col), flattened with index
    (g_row + 255) * 511 + (g_col + 255).

    The bin edges are rounded to float32, as skimage's Cython code does. Float32 rounding can put the last
    edge just below 180 degrees; skimage then drops the few orientations in between, and here they go to an
    extra bin `orientations` that the histogram discards."""
    steps = np.arange(-MAX_GRADIENT, MAX_GRADIENT + 1, dtype=np.float64)
    g_row, g_col = np.meshgrid(steps, steps, indexing="ij")
    orientation = np.rad2deg(np.arctan2(g_row, g_col)) % 180
    width = np.float32(180.0 / orientations)
    edges = (width * np.arange(orientations + 1, dtype=np.float32)).astype(np.float64)
    bins = (np.searchsorted(edges, orientation, side="right") - 1).astype(np.intp)
    magnitudes, bins = np.hypot(g_row, g_col).ravel(), bins.ravel()
    magnitudes.setflags(write=False)  # shared through the cache
    bins.setflags(write=False)
    return magnitudes, bins


@functools.cache
def cell_glyphs(orientations: int, cell: int) -> np.ndarray:
    """One `cell` x `cell` mask per orientation bin, shape (orientations, cell, cell): the line skimage
    draws for that bin, through the cell centre, along the edge at the bin's mid-angle."""
    radius = cell // 2 - 1
    centre = cell // 2
    # Offsets that are whole numbers of pixels up to rounding error (the exactly horizontal line of an odd
    # bin count, sin 30 degrees times an even radius) are snapped to them, so that truncating to a pixel
    # index cannot shift the line by one. skimage computes them from each cell's absolute centre, where
    # the error is sometimes absorbed and sometimes not, so its glyph can move by a pixel from cell to cell.
    glyphs = np.zeros((orientations, cell, cell), dtype=np.float64)
    for index in range(orientations):
        angle = np.pi * (index + 0.5) / orientations
        d_row, d_col = round(radius * np.sin(angle), 9), round(radius * np.cos(angle), 9)
        rr, cc = line(int(centre - d_col), int(centre + d_row), int(centre + d_col), int(centre - d_row))
        glyphs[index, rr, cc] = 1.0
    glyphs.setflags(write=False)  # shared through the cache
    return glyphs


def render_cells(histograms: np.ndarray, glyphs: np.ndarray) -> np.ndarray:
    """Every cell's glyphs weighted by its histogram and summed, tiled into one picture."""
    rows, cols, _ = histograms.shape
    cell = glyphs.shape[1]
    tiles = np.tensordot(histograms, glyphs, axes=([2], [0]))  # rows, cols, cell, cell
    return tiles.transpose(0, 2, 1, 3).reshape(rows * cell, cols * cell)

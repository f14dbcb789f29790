"""Texture tool: LBPTool.

Paper 003, section 3.1.1: "The LBP operator captures subtle texture irregularities, which are effective for
identifying mask materials and paper surface inconsistencies." Skin has a fine, irregular micro-texture;
paper grain, halftone dots, screen pixels and mask materials replace it with textures whose local binary
patterns are distributed differently (Maatta et al. 2011, Boulkenafet et al. 2015).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.feature import local_binary_pattern

from rft.tools.arguments import LBPArguments
from rft.tools.images import gray_to_rgb, rgb_to_gray


def lbp_codes(image: np.ndarray, arguments: LBPArguments) -> np.ndarray:
    """The uniform LBP code of every pixel of the image's luma, as a grey level, as RGB.

    Uniform LBP with P neighbours has P + 2 codes: 0..P count the neighbours at least as bright as the
    centre for patterns with at most two 0/1 transitions (spots, edges, corners, flat areas), and P + 1
    collects every other pattern (noise). Code c is drawn as round(255 * c / (P + 1)) whatever the image,
    so a grey level means the same pattern in every picture.
    """
    gray = rgb_to_gray(image)
    codes = codes_with_mirrored_border(gray, arguments.P, arguments.R)
    return gray_to_rgb(np.rint(codes * (255.0 / (arguments.P + 1))).astype(np.uint8))


def codes_with_mirrored_border(gray: np.ndarray, points: int, radius: float) -> np.ndarray:
    """skimage's uniform LBP codes of `gray`, computed on a mirrored margin and cut back to its size.

    skimage samples neighbours outside the image as 0 (black), which would draw a frame of spurious codes
    around every picture; mirroring the border keeps border pixels' codes about the image itself.
    """
    margin = math.ceil(radius)
    padded = cv2.copyMakeBorder(gray, margin, margin, margin, margin, cv2.BORDER_REFLECT_101)
    codes = local_binary_pattern(padded, points, radius, method="uniform")
    return codes[margin:-margin, margin:-margin]

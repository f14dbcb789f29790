"""What an expert sees: one tool's picture of a face, as a standardised grey array (paper 003, Eq. 6).

Every tool but ZoomInTool has an expert (section 3.1.2: "each E_k corresponds to a visual tool (excluding
the Zoom-In Tool)"). The five pictures are grey levels drawn as RGB, so the expert reads one channel.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image

from rft.tools import TOOL_NAMES, run_tool
from rft.tools.arguments import (
    HOG_ORIENTATIONS_RANGE,
    HOG_PIXELS_PER_CELL_RANGE,
    LBP_POINTS_RANGE,
    LBP_RADIUS_RANGE,
)

EXPERT_TOOLS: tuple[str, ...] = tuple(name for name in TOOL_NAMES if name != "ZoomInTool")
WAVELETS = ("haar", "db2", "db4", "sym4", "coif1", "bior1.3")
# Cell sides that tile common crop sizes (112, 224) well, within the schema's range.
CELL_SIDES = tuple(
    c for c in (4, 7, 8, 14, 16) if HOG_PIXELS_PER_CELL_RANGE[0] <= c <= HOG_PIXELS_PER_CELL_RANGE[1]
)
# A flat picture (std 0) must not blow up the standardisation.
MIN_STD = 1e-3


def check_expert_tool(tool: str) -> str:
    if tool not in EXPERT_TOOLS:
        raise ValueError(f"no expert for tool {tool!r}; experts exist for {', '.join(EXPERT_TOOLS)}")
    return tool


def tool_picture(
    tool: str, image: Image.Image | np.ndarray, arguments: dict[str, Any] | None = None
) -> np.ndarray:
    """The tool's RGB uint8 picture of `image` (rft.tools.run_tool), default arguments when None."""
    return run_tool(tool, image, arguments or {})


def expert_input(picture: np.ndarray, input_size: int) -> np.ndarray:
    """A tool picture as the CNN's input: grey, resized to `input_size` (area averaging), zero mean and unit
    standard deviation per image. Standardising removes the per-picture contrast stretch of the tools, which
    differs between capture domains for reasons that have nothing to do with attacks (noise lifts the whole
    FFT floor in a dim street scene)."""
    grey = picture if picture.ndim == 2 else cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY)
    if grey.shape != (input_size, input_size):
        grey = cv2.resize(grey, (input_size, input_size), interpolation=cv2.INTER_AREA)
    values = grey.astype(np.float32) / 255.0
    return (values - values.mean()) / max(float(values.std()), MIN_STD)


def random_arguments(tool: str, rng: np.random.Generator) -> dict[str, Any]:
    """Valid non-default arguments for `tool`, drawn uniformly from what its schema allows, so that an expert
    also knows the pictures of calls a teacher makes with its own settings."""
    check_expert_tool(tool)
    if tool == "LBPTool":
        return {
            "P": int(rng.integers(LBP_POINTS_RANGE[0], LBP_POINTS_RANGE[1] + 1)),
            "R": float(np.round(rng.uniform(*LBP_RADIUS_RANGE), 2)),
        }
    if tool == "WaveletTransformTool":
        return {"wavelet": str(rng.choice(WAVELETS))}
    if tool == "EdgeDetectionTool":
        return {"ksize": int(rng.choice([1, 3, 5]))}
    if tool == "HOGTool":
        return {
            "orientations": int(rng.integers(HOG_ORIENTATIONS_RANGE[0], HOG_ORIENTATIONS_RANGE[1] + 1)),
            "pixels_per_cell": int(rng.choice(CELL_SIDES)),
        }
    return {}  # FFTTool has no settings

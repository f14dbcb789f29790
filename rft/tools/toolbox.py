"""The six tools of paper 003, validating a call's arguments, and running a call on an image."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ValidationError

from rft.tools.arguments import (
    EdgeDetectionArguments,
    FFTArguments,
    HOGArguments,
    LBPArguments,
    WaveletTransformArguments,
    ZoomInArguments,
)
from rft.tools.errors import (
    ToolArgumentError,
    UnknownToolError,
    describe_validation_error,
    short_repr,
)
from rft.tools.frequency import fft_spectrum, wavelet_mosaic
from rft.tools.images import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, as_rgb_array
from rft.tools.structure import hog_picture, laplacian_edges
from rft.tools.texture import lbp_codes
from rft.tools.zoom import DEFAULT_OUTPUT_SIZE, zoom_in


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it (name, description, arguments) and the function that runs it.

    `run(image, arguments)` expects an RGB uint8 array of shape (H, W, 3) and validated arguments, and
    returns an RGB uint8 array; `run_tool` checks untrusted input first.
    """

    name: str
    description: str
    arguments: type[BaseModel]
    run: Callable[[np.ndarray, BaseModel], np.ndarray]


# Descriptions: the "Available Tools" list of paper 003's system prompt (Appendix A.2, Figure S8), verbatim.
TOOLS: dict[str, ToolSpec] = {
    "ZoomInTool": ToolSpec(
        name="ZoomInTool",
        description="Inspect local details for physical (print/screen) or digital (blending) artifacts.",
        arguments=ZoomInArguments,
        run=zoom_in,
    ),
    "FFTTool": ToolSpec(
        name="FFTTool",
        description=(
            "Visualizes the image's frequency domain. Used to detect periodic patterns like screen Moiré "
            "effects or subtle artifacts from digital generation."
        ),
        arguments=FFTArguments,
        run=fft_spectrum,
    ),
    "LBPTool": ToolSpec(
        name="LBPTool",
        description="Analyze skin texture for unnatural or synthetic patterns.",
        arguments=LBPArguments,
        run=lbp_codes,
    ),
    "WaveletTransformTool": ToolSpec(
        name="WaveletTransformTool",
        description="Find subtle digital tampering or noise mismatches via multi-scale analysis.",
        arguments=WaveletTransformArguments,
        run=wavelet_mosaic,
    ),
    "EdgeDetectionTool": ToolSpec(
        name="EdgeDetectionTool",
        description="Find inconsistent edges from cutouts or digital blending.",
        arguments=EdgeDetectionArguments,
        run=laplacian_edges,
    ),
    "HOGTool": ToolSpec(
        name="HOGTool",
        description="Check facial structure gradients, which are often disrupted in physical attacks.",
        arguments=HOGArguments,
        run=hog_picture,
    ),
}

TOOL_NAMES: tuple[str, ...] = tuple(TOOLS)


def tool_spec(name: Any) -> ToolSpec:
    """The spec of tool `name`; UnknownToolError for anything that is not one of TOOL_NAMES."""
    if isinstance(name, str) and name in TOOLS:
        return TOOLS[name]
    raise UnknownToolError(short_repr(name), f"unknown tool; expected one of {', '.join(TOOL_NAMES)}")


def validate_arguments(name: str, arguments: Any) -> BaseModel:
    """The validated arguments of a call to tool `name`.

    `arguments` may be a mapping (the parsed "arguments" object of a Hermes tool call), its JSON text, an
    instance of the tool's argument model, or None for a call without arguments. Raises UnknownToolError
    or ToolArgumentError, and nothing else, whatever `arguments` holds.
    """
    spec = tool_spec(name)
    model = spec.arguments
    if isinstance(arguments, model):
        return arguments
    try:
        if arguments is None:
            return model.model_validate({})
        if isinstance(arguments, str):
            return model.model_validate_json(arguments)
        if isinstance(arguments, Mapping):
            return model.model_validate(dict(arguments))
    except ValidationError as error:
        raise ToolArgumentError(spec.name, describe_validation_error(error)) from None
    raise ToolArgumentError(spec.name, f"arguments must be a JSON object, got {_json_type(arguments)}")


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array", tuple: "an array"}
    return names.get(type(value), type(value).__name__)


def run_tool(
    name: str, image: Image.Image | np.ndarray, arguments: Any, output_size: int = DEFAULT_OUTPUT_SIZE
) -> np.ndarray:
    """Validate a call and run it: the tool's picture of `image` as an RGB uint8 array (H, W, 3).

    The picture has the size of `image`, except ZoomInTool's, which is `output_size` x `output_size` (the
    model's input size). Arguments are checked before the image. Bad input raises a ToolError subclass:
    UnknownToolError, ToolArgumentError (including a box or cell that does not fit this image) or
    ToolInputError (the image is not a PIL image or a uint8 grey/RGB array with sides of 8-4096 pixels).
    """
    _check_output_size(output_size)
    spec = tool_spec(name)
    validated = validate_arguments(spec.name, arguments)
    rgb = as_rgb_array(image, spec.name)
    if isinstance(validated, ZoomInArguments):  # the one tool whose picture takes the model's input size
        return zoom_in(rgb, validated, output_size=output_size)
    return spec.run(rgb, validated)


def _check_output_size(output_size: object) -> None:
    # A deployment setting, not model input: a plain ValueError, not a ToolError.
    if type(output_size) is not int or not MIN_IMAGE_SIDE <= output_size <= MAX_IMAGE_SIDE:
        raise ValueError(
            f"output_size must be an int from {MIN_IMAGE_SIDE} to {MAX_IMAGE_SIDE}, got {output_size!r}"
        )

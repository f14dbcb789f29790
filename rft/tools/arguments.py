"""The argument model of each tool: what the policy model may put in a call's "arguments" object.

Every model is strict, so a string is never read as a number nor a bool as an integer, rejects unknown keys
and non-finite numbers, and is frozen. Their JSON schemas (rft/tools/schemas.py) are what the prompt shows
the model, so the field descriptions are written for it. Integer fields take JSON integers only (3, not 3.0).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Coordinates = Literal["pixel", "normalized"]
Wavelet = Literal["haar", "db2", "db4", "sym4", "coif1", "bior1.3"]

# Paper 003 does not give the operators' parameters; the defaults are the textbook settings: LBP(8, 1)
# (Ojala et al. 2002), Haar, the 4-neighbour Laplacian (OpenCV's default aperture) and Dalal-Triggs HOG
# (9 unsigned orientations, 8x8-pixel cells).
DEFAULT_LBP_POINTS = 8
DEFAULT_LBP_RADIUS = 1.0
DEFAULT_WAVELET: Wavelet = "haar"
DEFAULT_LAPLACIAN_KSIZE = 1
DEFAULT_HOG_ORIENTATIONS = 9
DEFAULT_HOG_PIXELS_PER_CELL = 8

# The bounds keep the slowest allowed call, LBP(16, 3), at half the 20 ms budget on a 224x224 image
# (docs/PERFORMANCE.md). LBP(24, 3), the third classic setting, takes ~15 ms on an idle core and ~25 ms on
# a busy one.
LBP_POINTS_RANGE = (4, 16)
LBP_RADIUS_RANGE = (1.0, 3.0)
HOG_ORIENTATIONS_RANGE = (4, 18)
HOG_PIXELS_PER_CELL_RANGE = (4, 32)


def _integer_only(value: Any) -> Any:
    # A Literal of ints matches by equality, so without this check True would pass as 1 and 3.0 as 3.
    if type(value) is not int:
        raise ValueError("Input should be an integer")
    return value


class ToolArguments(BaseModel):
    """Fields shared by every tool: the optional statement of what the call is expected to show (Figure S8,
    "Each tool request must include a clear expectation"). The tools ignore it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    expectation: str = Field(
        "", description="Optional: what you expect to see, i.e. the hypothesis this call tests."
    )


class ZoomInArguments(ToolArguments):
    bbox: Annotated[
        list[FiniteFloat],
        Field(
            min_length=4,
            max_length=4,
            description=(
                "Region to inspect as [x0, y0, x1, y1]: left, top, right and bottom edges, x0 < x1 and "
                "y0 < y1. Parts outside the image are cut off."
            ),
        ),
    ]
    coordinates: Coordinates = Field(
        "pixel",
        description=(
            "Unit of bbox: 'pixel' (pixel edges, origin at the top-left corner) or 'normalized' "
            "(fractions of the image width and height, from 0 to 1)."
        ),
    )

    @field_validator("bbox", mode="before")
    @classmethod
    def _tuple_as_list(cls, value: Any) -> Any:
        # Python callers naturally write boxes as tuples; JSON only has arrays.
        return list(value) if isinstance(value, tuple) else value

    @field_validator("bbox")
    @classmethod
    def _edges_in_order(cls, bbox: list[float]) -> list[float]:
        x0, y0, x1, y1 = bbox
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"needs x0 < x1 and y0 < y1, got [{x0:g}, {y0:g}, {x1:g}, {y1:g}]")
        return bbox


class FFTArguments(ToolArguments):
    pass


class LBPArguments(ToolArguments):
    P: Annotated[int, Field(ge=LBP_POINTS_RANGE[0], le=LBP_POINTS_RANGE[1])] = Field(
        DEFAULT_LBP_POINTS, description="Number of circularly symmetric neighbours sampled around each pixel."
    )
    R: Annotated[float, Field(ge=LBP_RADIUS_RANGE[0], le=LBP_RADIUS_RANGE[1], allow_inf_nan=False)] = Field(
        DEFAULT_LBP_RADIUS, description="Radius of the neighbour circle in pixels."
    )


class WaveletTransformArguments(ToolArguments):
    wavelet: Wavelet = Field(DEFAULT_WAVELET, description="Wavelet family of the decomposition.")


class EdgeDetectionArguments(ToolArguments):
    ksize: Annotated[Literal[1, 3, 5], BeforeValidator(_integer_only)] = Field(
        DEFAULT_LAPLACIAN_KSIZE,
        description=(
            "Aperture of the Laplacian: 1 is the plain 3x3 kernel; 3 and 5 also smooth, finding coarser "
            "edges."
        ),
    )


class HOGArguments(ToolArguments):
    orientations: Annotated[int, Field(ge=HOG_ORIENTATIONS_RANGE[0], le=HOG_ORIENTATIONS_RANGE[1])] = Field(
        DEFAULT_HOG_ORIENTATIONS, description="Number of gradient orientation bins over 0-180 degrees."
    )
    pixels_per_cell: Annotated[
        int, Field(ge=HOG_PIXELS_PER_CELL_RANGE[0], le=HOG_PIXELS_PER_CELL_RANGE[1])
    ] = Field(DEFAULT_HOG_PIXELS_PER_CELL, description="Side of the square cells, in pixels.")

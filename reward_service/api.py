"""The reward service's wire format: JSON bodies validated by pydantic on both sides.

Images travel as base64-encoded PNG. Scoring is idempotent by `request_id`: the same request id always
returns the same scores, so a client may retry any request without losing or duplicating a score.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, model_validator

Method = Literal["rft_fas", "dt_grpo", "st_grpo"]
MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_ROLLOUTS = 8192


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolRequest(Strict):
    """Run one visual tool on one image."""

    name: str = Field(..., max_length=64, description="Tool name, e.g. 'FFTTool'.")
    arguments: Any = Field(
        default_factory=dict, description="The tool call's arguments as the model wrote them."
    )
    image_png: str = Field(..., description="Base64 PNG of the image the tool is applied to.")
    output_size: int = Field(224, ge=16, le=2048, description="Side of ZoomInTool's upsampled output.")


class ToolResponse(Strict):
    ok: bool
    image_png: str | None = None
    error: str | None = Field(None, description="One line: why the call was rejected (a format penalty).")
    error_type: str | None = None
    seconds: float = 0.0


class Rollout(Strict):
    """One sampled response (paper 001) or one multi-turn episode (paper 003) to score."""

    id: str = Field(..., min_length=1, max_length=256)
    label: Literal["live", "spoof"]
    turns: list[str] = Field(..., min_length=1, description="The model's text of each turn, in order.")
    completion_tokens: int | None = Field(
        None, ge=0, description="Token count of the response (paper 001's len)."
    )


class ScoreRequest(Strict):
    request_id: str = Field(..., min_length=1, max_length=128, description="Idempotency key of this batch.")
    method: Method
    rollouts: list[Rollout] = Field(..., min_length=1, max_length=MAX_ROLLOUTS)
    coefficients: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the method's reward coefficients (docs/REWARDS.md)."
    )
    max_tool_calls: int = Field(3, ge=0, le=32)

    @model_validator(mode="after")
    def _unique_ids_and_lengths(self) -> ScoreRequest:
        ids = [r.id for r in self.rollouts]
        if len(set(ids)) != len(ids):
            raise ValueError("rollout ids must be unique within a request")
        if self.method == "rft_fas" and any(r.completion_tokens is None for r in self.rollouts):
            raise ValueError("rft_fas rollouts need completion_tokens: R_res counts the response's tokens")
        return self


class ScoredRollout(Strict):
    id: str
    total: float
    components: dict[str, float]
    format_errors: list[str] = Field(default_factory=list)


class ScoreResponse(Strict):
    request_id: str
    method: Method
    scores: list[ScoredRollout]


def encode_png(image: Image.Image | np.ndarray) -> str:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    # Level 1 costs about a third less time than PNG's default and the images stay lossless.
    image.save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class ImageDecodeError(ValueError):
    """The request's image is not base64 PNG/JPEG data."""


def decode_image(data: str) -> np.ndarray:
    """Base64 image -> uint8 RGB array. Raises ImageDecodeError with one line on anything else."""
    if len(data) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise ImageDecodeError(f"image is larger than {MAX_IMAGE_BYTES // 2**20} MiB")
    try:
        raw = base64.b64decode(data, validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            return np.asarray(image.convert("RGB"))
    except (
        binascii.Error,
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
    ) as error:
        raise ImageDecodeError(f"image_png is not a base64-encoded image ({type(error).__name__})") from None

"""The reward service's wire format: JSON bodies validated by pydantic on both sides.

Images travel as base64 PNG (`image_png`) or as base64 raw uint8 RGB pixels with their shape (`image_raw`);
a tool's answer comes back in the encoding of its request. Scoring is idempotent by `request_id`: the same
request id always returns the same scores, so a client may retry any request without losing or duplicating
a score.

Requests are validated strictly: no coercion (`"3"` is not 3, `3.0` is not an int, `1` is not `true`), floats
finite, every string, list and number bounded. A service with a token wants `Authorization: Bearer <token>`
on every request but /healthz and /readyz (docs/SECURITY.md).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from rft.codec import MAX_IMAGE_BYTES, encode_png
from rft.methods import MethodName, method_named
from rft.tools.images import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE

Encoding = Literal["png", "raw"]
# The environment variable that holds the service's token, for the service and for its clients.
TOKEN_ENV = "RFT_REWARD_TOKEN"
MAX_ROLLOUTS = 8192
MAX_REQUEST_ID = 128
# The client names a chunk "<request id>/<first>-<end>": room for two five-digit indices and the separators.
MAX_CHUNK_ID = MAX_REQUEST_ID + 16
# A turn is one model response: far below this at any context length the project trains with.
MAX_TURN_CHARS = 256 * 1024
MAX_TURNS = 64
MAX_COMPLETION_TOKENS = 1 << 24
MAX_COEFFICIENTS = 16
MAX_PNG_CHARS = 4 * ((MAX_IMAGE_BYTES + 2) // 3)
Name = Annotated[str, Field(min_length=1, max_length=64)]


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return (isinstance(value, int) and abs(value) <= 1 << 31) or (
        isinstance(value, float) and math.isfinite(value)
    )


def _coefficient(value: Any) -> Any:
    """One problem for one coefficient, where a union of types would report one per member."""
    if _finite_number(value) or (
        isinstance(value, dict)
        and len(value) <= MAX_COEFFICIENTS
        and all(isinstance(k, str) and len(k) <= 64 and _finite_number(v) for k, v in value.items())
    ):
        return value
    raise PydanticCustomError(
        "coefficient_type",
        "a coefficient is a finite number or a map of at most {most} tool names to finite numbers",
        {"most": MAX_COEFFICIENTS},
    )


CoefficientValue = Annotated[Any, AfterValidator(_coefficient)]


class Strict(BaseModel):
    """A response (or a part of one): unknown fields refused."""

    model_config = ConfigDict(extra="forbid")


class StrictRequest(Strict):
    """A request: no coercion between types, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class RawImage(StrictRequest):
    """An RGB image as its pixels: base64 of the H*W*3 uint8 bytes of a C-ordered (H, W, 3) array.

    Validation decodes the data once and keeps the array; a wrong shape, dtype or byte count is a typed
    validation error (a 422 from the service), never a crash."""

    data: str = Field(
        ..., max_length=MAX_PNG_CHARS, description="Base64 of the pixel bytes, row by row, R, G, B per pixel."
    )
    # Lax on the container only, so that Python callers may pass a list; each side must be a JSON integer.
    shape: tuple[StrictInt, StrictInt, StrictInt] = Field(
        ..., strict=False, description="[height, width, 3]."
    )
    dtype: Literal["uint8"] = "uint8"
    _pixels: np.ndarray | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _decode(self) -> RawImage:
        self._pixels = _raw_pixels(self.data, self.shape)
        return self

    @classmethod
    def from_pixels(cls, rgb: np.ndarray) -> RawImage:
        """Wrap a uint8 (H, W, 3) array; the array is trusted (it comes from a tool or `as_rgb_array`)."""
        rgb = np.ascontiguousarray(rgb)
        image = cls.model_construct(data=base64.b64encode(rgb.data).decode("ascii"), shape=rgb.shape)
        image._pixels = rgb
        return image

    @property
    def pixels(self) -> np.ndarray:
        assert self._pixels is not None, "RawImage built without validation or from_pixels"
        return self._pixels


def _raw_pixels(data: str, shape: tuple[int, int, int]) -> np.ndarray:
    height, width, channels = shape
    if channels != 3 or not (
        MIN_IMAGE_SIDE <= height <= MAX_IMAGE_SIDE and MIN_IMAGE_SIDE <= width <= MAX_IMAGE_SIDE
    ):
        raise PydanticCustomError(
            "raw_image_shape",
            "shape must be [height, width, 3] with sides from {low} to {high}, got {shape}",
            {"low": MIN_IMAGE_SIDE, "high": MAX_IMAGE_SIDE, "shape": list(shape)},
        )
    size = height * width * 3
    if size > MAX_IMAGE_BYTES:
        raise PydanticCustomError(
            "raw_image_too_large",
            "image has {size} bytes; the limit is {limit}",
            {"size": size, "limit": MAX_IMAGE_BYTES},
        )
    # Checked on the text's length first, so a wrong-sized payload is refused without decoding it.
    if len(data) != 4 * ((size + 2) // 3):
        raise PydanticCustomError(
            "raw_image_size",
            "data holds {got} base64 characters; shape {shape} needs {want}",
            {"got": len(data), "shape": list(shape), "want": 4 * ((size + 2) // 3)},
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError("raw_image_base64", "data is not valid base64") from None
    if len(raw) != size:  # padding can still hide one or two missing bytes
        raise PydanticCustomError(
            "raw_image_size",
            "data decodes to {got} bytes; shape {shape} needs {want}",
            {"got": len(raw), "shape": list(shape), "want": size},
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


class ToolRequest(StrictRequest):
    """Run one visual tool on one image, sent as exactly one of `image_png` and `image_raw`."""

    name: str = Field(..., max_length=64, description="Tool name, e.g. 'FFTTool'.")
    arguments: Any = Field(
        default_factory=dict, description="The tool call's arguments as the model wrote them."
    )
    image_png: str | None = Field(
        None, max_length=MAX_PNG_CHARS, description="Base64 PNG of the image the tool is applied to."
    )
    image_raw: RawImage | None = Field(None, description="The image as raw uint8 RGB pixels.")
    output_size: int = Field(224, ge=16, le=2048, description="Side of ZoomInTool's upsampled output.")

    @model_validator(mode="after")
    def _one_image(self) -> ToolRequest:
        if (self.image_png is None) == (self.image_raw is None):
            raise PydanticCustomError("one_image", "send exactly one of image_png and image_raw")
        return self

    @property
    def encoding(self) -> Encoding:
        return "png" if self.image_raw is None else "raw"


class ToolResponse(Strict):
    """A tool's picture in the encoding of the request, or why the call was rejected."""

    ok: bool
    image_png: str | None = None
    image_raw: RawImage | None = None
    error: str | None = Field(None, description="One line: why the call was rejected (a format penalty).")
    error_type: str | None = None
    seconds: float = 0.0


class Rollout(StrictRequest):
    """One sampled response (paper 001) or one multi-turn episode (paper 003) to score."""

    id: str = Field(..., min_length=1, max_length=256)
    label: Literal["live", "spoof"]
    turns: list[Annotated[str, Field(max_length=MAX_TURN_CHARS)]] = Field(
        ..., min_length=1, max_length=MAX_TURNS, description="The model's text of each turn, in order."
    )
    completion_tokens: int | None = Field(
        None, ge=0, le=MAX_COMPLETION_TOKENS, description="Token count of the response (paper 001's len)."
    )


class ScoreRequest(StrictRequest):
    request_id: str = Field(
        ..., min_length=1, max_length=MAX_CHUNK_ID, description="Idempotency key of this batch (or chunk)."
    )
    method: MethodName
    rollouts: list[Rollout] = Field(..., min_length=1, max_length=MAX_ROLLOUTS)
    coefficients: dict[Name, CoefficientValue] = Field(
        default_factory=dict,
        max_length=MAX_COEFFICIENTS,
        description="Overrides of the method's reward coefficients (docs/REWARDS.md).",
    )
    max_tool_calls: int = Field(3, ge=0, le=32)

    @model_validator(mode="after")
    def _unique_ids_and_lengths(self) -> ScoreRequest:
        ids = [r.id for r in self.rollouts]
        if len(set(ids)) != len(ids):
            raise ValueError("rollout ids must be unique within a request")
        if method_named(self.method).counts_tokens and any(
            r.completion_tokens is None for r in self.rollouts
        ):
            raise ValueError(
                f"{self.method} rollouts need completion_tokens: its reward counts the response's tokens"
            )
        return self


class ScoredRollout(Strict):
    id: str
    total: float
    components: dict[str, float]
    format_errors: list[str] = Field(default_factory=list)


class ScoreResponse(Strict):
    request_id: str
    method: MethodName
    scores: list[ScoredRollout]


def encode_image(rgb: np.ndarray, encoding: Encoding) -> dict[str, Any]:
    """The `image_png` or `image_raw` field of a request or response carrying `rgb`."""
    if encoding == "raw":
        return {"image_raw": RawImage.from_pixels(rgb)}
    return {"image_png": encode_png(rgb)}

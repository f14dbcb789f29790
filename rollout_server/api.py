"""The rollout server's wire format (JSON validated by pydantic on both sides; images as base64 PNG) and the
limits of what it accepts (docs/ROLLOUT_SERVER.md lists them).

The sampling types a trainer sees (`Sampling`, `SampleResponse`, ...) are rft.rollout.sampling's; this module
adds the request bodies and the wire form of an episode. Request bodies are strict (`StrictRequest`): a value
of the wrong JSON type is refused with its field's name, never coerced on its way to vLLM."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from PIL import Image
from pydantic import Field, ValidationInfo, field_validator

from rft.codec import MAX_IMAGE_BYTES, ImageDecodeError, base64_length, decode_pil, encode_png, image_size
from rft.rollout.episode import Episode, ToolCallRecord
from rft.rollout.sampling import MAX_ADAPTER_NAME, Sampling, Strict, StrictRequest

# What one request may hold. A body is refused (413) from its Content-Length or while it is read; the rest
# is checked on the parsed body, before any image is decoded or any text tokenised (400).
MAX_ROLLOUT_BODY_BYTES = 256 * 2**20  # /v1/samples, /v1/episodes
MAX_CHAT_BODY_BYTES = 64 * 2**20  # /v1/chat/completions
MAX_PROMPTS = 1024  # images of a /v1/samples or /v1/episodes request, one prompt each
MAX_N = 256  # completions or episodes per image
MAX_SEQUENCES = 8192  # n x images
MAX_MESSAGES = 64
MAX_PARTS = 64  # parts of one message's content
MAX_TEXT_CHARS = 65_536  # one text: a message's content or one of its text parts
MAX_PROMPT_CHARS = 131_072  # all the texts of a request, and the chat route's tool schemas as JSON
MAX_CHAT_IMAGES = 8
MAX_REQUEST_PIXELS = 2**27  # all the images of a request, read from their headers (400 MB as RGB)

Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
ImageData = Annotated[str, Field(min_length=1, max_length=base64_length(MAX_IMAGE_BYTES))]


class TextPart(StrictRequest):
    type: Literal["text"]
    text: Text


class ImagePart(StrictRequest):
    """Where the request's image goes (rft.prompts.episodes.IMAGE_PART)."""

    type: Literal["image"]


class Message(StrictRequest):
    role: Literal["system", "user", "assistant", "tool"]
    content: Text | Annotated[list[TextPart | ImagePart], Field(max_length=MAX_PARTS)]


class _ImagesRequest(StrictRequest):
    images: list[ImageData] = Field(..., min_length=1, max_length=MAX_PROMPTS, description="Base64 PNG each.")
    n: int = Field(..., ge=1, le=MAX_N)
    sampling: Sampling = Field(default_factory=Sampling)

    @field_validator("n")
    @classmethod
    def _bounded_work(cls, n: int, info: ValidationInfo) -> int:
        images = len(info.data.get("images", ()))
        if n * images > MAX_SEQUENCES:
            raise ValueError(f"n x images is {n * images}; the limit is {MAX_SEQUENCES} per request")
        return n

    def named_images(self) -> list[tuple[str, str]]:
        return [(f"images[{i}]", data) for i, data in enumerate(self.images)]


class SampleRequest(_ImagesRequest):
    """Single-turn sampling (paper 001): n completions for each image under the same messages."""

    messages: list[Message] = Field(
        ..., min_length=1, max_length=MAX_MESSAGES, description="Chat messages; one image part."
    )

    @field_validator("messages")
    @classmethod
    def _one_image_and_bounded_text(cls, messages: list[Message]) -> list[Message]:
        parts = [part for m in messages if isinstance(m.content, list) for part in m.content]
        images = sum(isinstance(part, ImagePart) for part in parts)
        if images != 1:
            raise ValueError(f"the messages hold {images} image parts; one is filled with each of `images`")
        texts = [m.content for m in messages if isinstance(m.content, str)]
        check_prompt_chars(sum(map(len, texts)) + sum(len(p.text) for p in parts if isinstance(p, TextPart)))
        return messages

    def message_dicts(self) -> list[dict[str, Any]]:
        return [message.model_dump() for message in self.messages]


class EpisodeRequest(_ImagesRequest):
    """Paper 003 episodes: n per image."""


def check_prompt_chars(total: int) -> None:
    """Refuse a request whose texts hold more than MAX_PROMPT_CHARS characters in all."""
    if total > MAX_PROMPT_CHARS:
        raise ValueError(f"the texts hold {total} characters; the limit is {MAX_PROMPT_CHARS} per request")


def decode_images(images: Sequence[tuple[str, str]]) -> list[Image.Image]:
    """(field, base64 image) pairs -> RGB images. Every header is read first: an image over the codec's
    limits, or images over MAX_REQUEST_PIXELS together, are refused (ImageDecodeError naming the field)
    before any pixel is decoded. Blocking: the routes run it in a thread."""
    pixels = 0
    for field, data in images:
        width, height = _named(field, image_size, data)
        pixels += width * height
    if pixels > MAX_REQUEST_PIXELS:
        raise ImageDecodeError(
            f"the images hold {pixels} pixels; the limit is {MAX_REQUEST_PIXELS} per request"
        )
    return [_named(field, decode_pil, data) for field, data in images]


T = TypeVar("T")


def _named(field: str, decode: Callable[[str], T], data: str) -> T:
    try:
        return decode(data)
    except ImageDecodeError as error:
        raise ImageDecodeError(f"{field}: {error}") from None


class ToolCallOut(Strict):
    name: str | None
    arguments: dict[str, Any] | None
    ok: bool
    error: str | None
    seconds: float


class EpisodeOut(Strict):
    token_ids: list[int]
    logprobs: list[float]
    mask: list[int]
    images: list[str]
    turns: list[str]
    tool_calls: list[ToolCallOut]
    prompt_length: int
    stop_reason: str
    messages: list[dict[str, Any]]


class EpisodeResponse(Strict):
    groups: list[list[EpisodeOut]]
    weights_version: int


class AdapterRequest(StrictRequest):
    name: str = Field(..., min_length=1, max_length=MAX_ADAPTER_NAME)
    path: str = Field(..., min_length=1, max_length=4096, description="PEFT adapter folder on the server.")


def episode_out(episode: Episode) -> EpisodeOut:
    return EpisodeOut(
        token_ids=episode.token_ids,
        logprobs=episode.logprobs,
        mask=episode.mask,
        images=[encode_png(image) for image in episode.images],
        turns=episode.turns,
        tool_calls=[ToolCallOut(**vars(call)) for call in episode.tool_calls],
        prompt_length=episode.prompt_length,
        stop_reason=episode.stop_reason,
        messages=episode.messages,
    )


def episode_from_wire(data: EpisodeOut) -> Episode:
    return Episode(
        token_ids=data.token_ids,
        logprobs=data.logprobs,
        mask=data.mask,
        images=[decode_pil(image) for image in data.images],
        turns=data.turns,
        tool_calls=[ToolCallRecord(**call.model_dump()) for call in data.tool_calls],
        prompt_length=data.prompt_length,
        stop_reason=data.stop_reason,
        messages=data.messages,
    )

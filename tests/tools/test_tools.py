"""The six visual tools: interface, argument validation, schemas and what each picture shows."""

from __future__ import annotations

import json
import pickle

import cv2
import jsonschema
import numpy as np
import pytest
from PIL import Image
from skimage.feature import hog

from rft.prompts.tar_fas import ANNOTATION_SYSTEM_PROMPT
from rft.tools import (
    TOOL_NAMES,
    TOOLS,
    ToolArgumentError,
    ToolError,
    ToolInputError,
    ToolSpec,
    UnknownToolError,
    run_tool,
    tool_schemas,
    validate_arguments,
)
from rft.tools.structure import cell_glyphs, cell_orientation_histograms
from rft.tools.zoom import crop_box

# A valid call of each tool; ZoomIn is the only one with a required argument.
VALID_ARGUMENTS = {
    "ZoomInTool": {"bbox": [40, 60, 120, 140]},
    "FFTTool": {},
    "LBPTool": {"P": 16, "R": 2},
    "WaveletTransformTool": {"wavelet": "db4"},
    "EdgeDetectionTool": {"ksize": 3},
    "HOGTool": {"orientations": 12, "pixels_per_cell": 16, "expectation": "regular facial gradients"},
}


def random_rgb(height: int = 224, width: int = 224, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def gray_picture(picture: np.ndarray) -> np.ndarray:
    """The single channel of a tool's grey picture, after checking that its three channels are equal."""
    assert np.array_equal(picture[..., 0], picture[..., 1]) and np.array_equal(
        picture[..., 0], picture[..., 2]
    )
    return picture[..., 0]


def as_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., None], 3, axis=2)


# ---------------------------------------------------------------------------------------------- interface


def test_tool_names_are_the_papers_and_tools_is_a_plain_dict():
    assert TOOL_NAMES == (
        "ZoomInTool",
        "FFTTool",
        "LBPTool",
        "WaveletTransformTool",
        "EdgeDetectionTool",
        "HOGTool",
    )
    assert type(TOOLS) is dict and tuple(TOOLS) == TOOL_NAMES
    assert all(isinstance(spec, ToolSpec) and spec.name == name for name, spec in TOOLS.items())


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_descriptions_are_figure_s8_verbatim(name):
    tool_lines = [line for line in ANNOTATION_SYSTEM_PROMPT.splitlines() if f"**{name}" in line]
    assert len(tool_lines) == 1
    assert tool_lines[0].endswith(TOOLS[name].description)


def test_errors_are_value_errors_with_one_line_messages_that_survive_pickling():
    error = ToolArgumentError("ZoomInTool", "bbox lies\noutside   the image")
    assert isinstance(error, ToolError) and isinstance(error, ValueError)
    assert str(error) == "ZoomInTool: bbox lies outside the image"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ToolArgumentError and str(copy) == str(error)


# ------------------------------------------------------------------------------------------ every tool


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_every_tool_is_deterministic_and_returns_uint8_rgb(name):
    image = random_rgb()
    first = run_tool(name, image, VALID_ARGUMENTS[name])
    second = run_tool(name, image.copy(), VALID_ARGUMENTS[name])
    assert first.dtype == np.uint8 and first.shape == (224, 224, 3) and first.flags.c_contiguous
    assert first.tobytes() == second.tobytes()
    assert first.max() > 0  # a random image gives every tool something to show


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_pictures_keep_the_input_size_except_zoom_in(name):
    image = random_rgb(67, 91)
    arguments = {"bbox": [0.1, 0.2, 0.6, 0.9], "coordinates": "normalized"} if name == "ZoomInTool" else {}
    picture = run_tool(name, image, arguments, output_size=112)
    assert picture.shape == ((112, 112, 3) if name == "ZoomInTool" else (67, 91, 3))


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_pil_grey_and_rgb_inputs_give_the_same_picture(name):
    gray = random_rgb(64, 64)[..., 0]
    expected = run_tool(name, as_rgb(gray), VALID_ARGUMENTS[name])
    for image in (gray, gray[..., None], Image.fromarray(gray), Image.fromarray(as_rgb(gray))):
        assert np.array_equal(run_tool(name, image, VALID_ARGUMENTS[name]), expected)


def test_the_input_image_is_not_modified():
    image = random_rgb()
    before = image.copy()
    for name in TOOL_NAMES:
        run_tool(name, image, VALID_ARGUMENTS[name])
    assert np.array_equal(image, before)


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (random_rgb().astype(np.float32), "dtype"),
        (np.zeros((64, 64), dtype=bool), "dtype"),
        (np.full((64, 64, 3), np.nan), "dtype"),
        (random_rgb()[..., :2], "shape"),
        (np.zeros((64, 64, 4), dtype=np.uint8), "shape"),
        (np.zeros((2, 64, 64, 3), dtype=np.uint8), "shape"),
        (np.zeros(64, dtype=np.uint8), "shape"),
        (np.zeros((0, 0, 3), dtype=np.uint8), "0x0"),
        (np.zeros((7, 64), dtype=np.uint8), "7x64"),
        (np.broadcast_to(np.uint8(0), (5000, 64)), "5000x64"),
        (Image.new("RGB", (5000, 10)), "10x5000"),
        (random_rgb().tolist(), "list"),
        (None, "NoneType"),
    ],
)
def test_unusable_images_raise_tool_input_error(image, problem):
    with pytest.raises(ToolInputError, match=problem) as caught:
        run_tool("FFTTool", image, {})
    assert str(caught.value).startswith("FFTTool: ")


def test_arguments_are_checked_before_the_image():
    with pytest.raises(ToolArgumentError):
        run_tool("LBPTool", None, {"P": 99})


@pytest.mark.parametrize("output_size", [0, 7, 4097, 224.0, True, "224"])
def test_a_bad_output_size_is_a_programming_error_not_a_tool_error(output_size):
    with pytest.raises(ValueError, match="output_size") as caught:
        run_tool("ZoomInTool", random_rgb(), {"bbox": [0, 0, 10, 10]}, output_size=output_size)
    assert not isinstance(caught.value, ToolError)


# ------------------------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_json_text_mapping_and_validated_model_are_equivalent(name):
    from_mapping = validate_arguments(name, VALID_ARGUMENTS[name])
    assert validate_arguments(name, json.dumps(VALID_ARGUMENTS[name])) == from_mapping
    assert validate_arguments(name, from_mapping) is from_mapping


def test_defaults():
    assert validate_arguments("FFTTool", None) == validate_arguments("FFTTool", {})
    assert validate_arguments("LBPTool", {}).model_dump() == {"expectation": "", "P": 8, "R": 1.0}
    assert validate_arguments("WaveletTransformTool", {}).wavelet == "haar"
    assert validate_arguments("EdgeDetectionTool", {}).ksize == 1
    hog_arguments = validate_arguments("HOGTool", {})
    assert (hog_arguments.orientations, hog_arguments.pixels_per_cell) == (9, 8)
    zoom = validate_arguments("ZoomInTool", {"bbox": (1, 2, 3, 4)})
    assert zoom.bbox == [1.0, 2.0, 3.0, 4.0] and zoom.coordinates == "pixel"


@pytest.mark.parametrize(
    ("name", "arguments", "problem"),
    [
        ("ZoomInTool", {}, "bbox: Field required"),
        ("ZoomInTool", {"bbox": [0, 0, 10]}, "bbox"),
        ("ZoomInTool", {"bbox": [0, 0, 10, float("nan")]}, "bbox.3: Input should be a finite number"),
        ("ZoomInTool", {"bbox": [0, float("-inf"), 10, 10]}, "finite"),
        ("ZoomInTool", '{"bbox": [0, 0, 10, Infinity]}', "finite"),
        ("ZoomInTool", {"bbox": [0, 0, 10, 10**400]}, "bbox.3"),
        ("ZoomInTool", {"bbox": ["0", 0, 10, 10]}, "bbox.0"),
        ("ZoomInTool", {"bbox": [True, 0, 10, 10]}, "bbox.0"),
        ("ZoomInTool", {"bbox": [10, 0, 10, 10]}, "needs x0 < x1 and y0 < y1, got \\[10, 0, 10, 10\\]"),
        ("ZoomInTool", {"bbox": [0, 0, 1, 1], "coordinates": "percent"}, "coordinates"),
        ("FFTTool", {"size": 3}, "size: Extra inputs are not permitted"),
        ("LBPTool", {"P": 17}, "P: Input should be less than or equal to 16"),
        ("LBPTool", {"P": "8"}, "P: Input should be a valid integer"),
        ("LBPTool", {"P": 8.0}, "P"),
        ("LBPTool", {"R": 0.5}, "R"),
        ("LBPTool", {"R": float("nan")}, "R"),
        ("WaveletTransformTool", {"wavelet": "db40"}, "wavelet"),
        ("EdgeDetectionTool", {"ksize": 7}, "ksize"),
        ("EdgeDetectionTool", {"ksize": True}, "ksize: Input should be an integer"),
        ("EdgeDetectionTool", {"ksize": 3.0}, "ksize"),
        ("HOGTool", {"orientations": 3}, "orientations"),
        ("HOGTool", {"pixels_per_cell": [8, 8]}, "pixels_per_cell"),
        ("HOGTool", {"expectation": 5}, "expectation"),
        ("HOGTool", [9, 8], "arguments must be a JSON object, got an array"),
        ("HOGTool", "not json", "Invalid JSON"),
        ("HOGTool", "[9, 8]", "object"),
    ],
)
def test_invalid_arguments_raise_tool_argument_error(name, arguments, problem):
    with pytest.raises(ToolArgumentError, match=problem) as caught:
        validate_arguments(name, arguments)
    assert str(caught.value).startswith(f"{name}: ") and "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["zoomintool", "ZoomIn", "", None, 3, ["FFTTool"], {"name": "FFTTool"}])
def test_unknown_tools(name):
    with pytest.raises(UnknownToolError, match="unknown tool; expected one of ZoomInTool, FFTTool"):
        validate_arguments(name, {})
    with pytest.raises(UnknownToolError):
        run_tool(name, random_rgb(), {})


def test_messages_stay_short_whatever_the_input():
    huge_key = "k" * 1_000_000
    with pytest.raises(ToolArgumentError) as caught:
        validate_arguments("FFTTool", {huge_key: 1, "a": 2, "b": 3, "c": 4})
    assert len(str(caught.value)) < 400 and "(and 1 more)" in str(caught.value)
    with pytest.raises(UnknownToolError) as caught:
        validate_arguments("x" * 1_000_000, {})
    assert len(str(caught.value)) < 400


# --------------------------------------------------------------------------------------------- schemas


def test_schemas_are_openai_style_function_descriptions():
    schemas = tool_schemas()
    assert [schema["function"]["name"] for schema in schemas] == list(TOOL_NAMES)
    for schema in schemas:
        assert schema["type"] == "function"
        function = schema["function"]
        assert set(function) == {"name", "description", "parameters"}
        assert function["description"] == TOOLS[function["name"]].description
        assert function["parameters"]["type"] == "object"
        assert function["parameters"]["additionalProperties"] is False
        assert "title" not in json.dumps(function["parameters"])


@pytest.mark.parametrize("name", TOOL_NAMES)
def test_schema_is_valid_json_schema_and_agrees_with_the_model(name):
    (schema,) = tool_schemas([name])
    parameters = schema["function"]["parameters"]
    jsonschema.Draft202012Validator.check_schema(parameters)
    validator = jsonschema.Draft202012Validator(parameters)
    validator.validate(VALID_ARGUMENTS[name])
    validate_arguments(name, VALID_ARGUMENTS[name])
    unknown_key = {**VALID_ARGUMENTS[name], "unexpected": 1}
    assert not validator.is_valid(unknown_key)
    with pytest.raises(ToolArgumentError):
        validate_arguments(name, unknown_key)


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("ZoomInTool", {"bbox": [0, 0, 1]}),
        ("ZoomInTool", {"bbox": [0, 0, 1, "1"]}),
        ("LBPTool", {"P": 3}),
        ("LBPTool", {"R": 3.5}),
        ("WaveletTransformTool", {"wavelet": "db3"}),
        ("EdgeDetectionTool", {"ksize": 2}),
        ("HOGTool", {"pixels_per_cell": 33}),
    ],
)
def test_schema_and_model_reject_the_same_invalid_arguments(name, arguments):
    (schema,) = tool_schemas([name])
    assert not jsonschema.Draft202012Validator(schema["function"]["parameters"]).is_valid(arguments)
    with pytest.raises(ToolArgumentError):
        validate_arguments(name, arguments)


def test_schema_selection():
    assert [s["function"]["name"] for s in tool_schemas(["HOGTool", "FFTTool", "HOGTool"])] == [
        "HOGTool",
        "FFTTool",
    ]
    assert tool_schemas([]) == []
    with pytest.raises(UnknownToolError):
        tool_schemas(["FFTTool", "SobelTool"])
    with pytest.raises(TypeError):
        tool_schemas("FFTTool")


def test_schemas_are_fresh_copies():
    tool_schemas()[0]["function"]["parameters"]["properties"].clear()
    assert "bbox" in tool_schemas()[0]["function"]["parameters"]["properties"]


def test_schemas_render_into_the_system_turn_of_the_chat_template():
    from transformers.utils.chat_template_utils import render_jinja_template

    from rft.prompts.chat_template import chat_template

    rendered, _ = render_jinja_template(
        [[{"role": "user", "content": "hi"}]], tools=tool_schemas(), chat_template=chat_template("qwen2_5_vl")
    )
    tools_block = rendered[0].split("<tools>\n")[1].split("\n</tools>")[0]
    assert [json.loads(line) for line in tools_block.splitlines()] == tool_schemas()


# --------------------------------------------------------------------------------------------- ZoomIn


def test_zoom_in_is_a_resize_of_the_crop():
    image = random_rgb(100, 120)
    picture = run_tool("ZoomInTool", image, {"bbox": [10, 20, 50, 60]}, output_size=96)
    expected = cv2.resize(image[20:60, 10:50], (96, 96), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(picture, expected)


def test_zoom_in_of_a_quadrant_shows_only_that_quadrant():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    image[:32, 32:] = (255, 0, 0)
    picture = run_tool("ZoomInTool", image, {"bbox": [32, 0, 64, 32]})
    assert np.all(picture == (255, 0, 0))


def test_zoom_in_pixel_and_normalized_coordinates_agree():
    image = random_rgb(48, 64)
    pixel = run_tool("ZoomInTool", image, {"bbox": [16, 12, 48, 36]})
    normalized = run_tool(
        "ZoomInTool", image, {"bbox": [0.25, 0.25, 0.75, 0.75], "coordinates": "normalized"}
    )
    assert np.array_equal(pixel, normalized)


def test_zoom_in_clamps_the_box_to_the_image():
    image = random_rgb(48, 64)
    clamped = run_tool("ZoomInTool", image, {"bbox": [-1e300, 20, 30, 1e300]})
    assert np.array_equal(clamped, run_tool("ZoomInTool", image, {"bbox": [0, 20, 30, 48]}))
    whole = run_tool("ZoomInTool", image, {"bbox": [-0.5, -0.5, 1.5, 1.5], "coordinates": "normalized"})
    assert np.array_equal(whole, run_tool("ZoomInTool", image, {"bbox": [0, 0, 64, 48]}))


@pytest.mark.parametrize(
    "arguments",
    [
        {"bbox": [64, 0, 100, 10]},
        {"bbox": [-20, -20, 0, 0]},
        {"bbox": [1.0, 0.0, 2.0, 1.0], "coordinates": "normalized"},
    ],
)
def test_zoom_in_box_outside_the_image_is_an_argument_error(arguments):
    with pytest.raises(ToolArgumentError, match="lies outside the 64x48 image"):
        run_tool("ZoomInTool", random_rgb(48, 64), arguments)


def test_zoom_in_takes_every_pixel_a_fractional_box_overlaps():
    arguments = validate_arguments("ZoomInTool", {"bbox": [10.5, 0.2, 10.6, 3.0]})
    assert crop_box(arguments, width=64, height=48) == (10, 0, 11, 3)


def test_zoom_in_of_the_whole_image_at_its_own_size_is_the_image():
    image = random_rgb(224, 224)
    assert np.array_equal(run_tool("ZoomInTool", image, {"bbox": [0, 0, 224, 224]}), image)


# ------------------------------------------------------------------------------------------------ FFT


@pytest.mark.parametrize(("height", "width", "cycles"), [(64, 64, 10), (48, 81, 7)])
def test_fft_of_a_horizontal_sinusoid_peaks_at_its_frequency(height, width, cycles):
    columns = np.arange(width)
    row = np.rint(127.5 + 120 * np.cos(2 * np.pi * cycles * columns / width)).astype(np.uint8)
    spectrum = gray_picture(run_tool("FFTTool", as_rgb(np.tile(row, (height, 1))), {})).astype(int)
    centre = (height // 2, width // 2)
    assert spectrum[centre] == 255  # the mean brightness dominates
    spectrum[centre] = 0
    peaks = {np.unravel_index(index, spectrum.shape) for index in np.argsort(spectrum, axis=None)[-2:]}
    assert peaks == {(centre[0], centre[1] - cycles), (centre[0], centre[1] + cycles)}


def test_fft_of_a_constant_image_is_a_single_dot():
    spectrum = gray_picture(run_tool("FFTTool", np.full((32, 32, 3), 90, dtype=np.uint8), {}))
    assert spectrum[16, 16] == 255 and np.count_nonzero(spectrum) == 1


# ------------------------------------------------------------------------------------------------ LBP


@pytest.mark.parametrize(("points", "radius"), [(8, 1), (16, 2), (12, 3.0), (4, 1.5)])
def test_lbp_of_a_constant_image_is_one_code_border_included(points, radius):
    picture = gray_picture(
        run_tool("LBPTool", np.full((40, 40, 3), 77, dtype=np.uint8), {"P": points, "R": radius})
    )
    # Every neighbour equals the centre: the uniform pattern with all P bits set, code P.
    assert np.all(picture == round(255 * points / (points + 1)))


def test_lbp_codes_are_drawn_with_a_fixed_palette():
    picture = gray_picture(run_tool("LBPTool", random_rgb(), {"P": 8}))
    palette = {round(255 * code / 9) for code in range(10)}
    assert set(np.unique(picture).tolist()) == palette  # noise shows every code, and nothing else


def test_lbp_of_a_step_changes_only_along_the_step():
    gray = np.full((32, 32), 40, dtype=np.uint8)
    gray[:, 16:] = 200
    picture = gray_picture(run_tool("LBPTool", as_rgb(gray), {"P": 8, "R": 1}))
    changed = np.flatnonzero(np.any(picture != round(255 * 8 / 9), axis=0))
    assert changed.tolist() == [16]  # the bright side of the step
    # Its three left-hand neighbours are darker, the other five are not: uniform pattern, code 5.
    assert np.all(picture[:, 16] == round(255 * 5 / 9))


# ------------------------------------------------------------------------------------------- Wavelet


def test_wavelet_approximation_is_the_downsampled_image():
    gray = cv2.GaussianBlur(random_rgb(64, 96)[..., 0], (7, 7), 2)
    mosaic = gray_picture(run_tool("WaveletTransformTool", as_rgb(gray), {"wavelet": "haar"}))
    downsampled = cv2.resize(gray, (48, 32), interpolation=cv2.INTER_AREA).astype(float)
    stretched = 255 * (downsampled - downsampled.min()) / np.ptp(downsampled)
    assert np.abs(mosaic[:32, :48] - stretched).max() <= 3


@pytest.mark.parametrize("wavelet", ["haar", "db2", "db4", "sym4", "coif1", "bior1.3"])
def test_wavelet_details_of_horizontal_stripes_are_in_the_horizontal_band(wavelet):
    gray = np.zeros((64, 64), dtype=np.uint8)
    gray[::2] = 255  # rows alternate: brightness changes only from row to row
    mosaic = gray_picture(run_tool("WaveletTransformTool", as_rgb(gray), {"wavelet": wavelet}))
    assert mosaic[:32, 32:].max() == 255  # horizontal detail, top right
    assert mosaic[32:, :].max() == 0  # vertical and diagonal detail see nothing


@pytest.mark.parametrize("wavelet", ["haar", "db2", "db4", "sym4", "coif1", "bior1.3"])
def test_wavelet_of_a_constant_image_is_black(wavelet):
    # Filters other than Haar leave rounding noise on a flat image; it must not be stretched into texture.
    image = np.full((33, 47, 3), 9, dtype=np.uint8)
    mosaic = gray_picture(run_tool("WaveletTransformTool", image, {"wavelet": wavelet}))
    assert mosaic.shape == (33, 47) and mosaic.max() == 0


# ------------------------------------------------------------------------------------- EdgeDetection


@pytest.mark.parametrize("ksize", [1, 3, 5])
def test_laplacian_of_a_constant_image_is_zero(ksize):
    picture = run_tool("EdgeDetectionTool", np.full((32, 32, 3), 123, dtype=np.uint8), {"ksize": ksize})
    assert picture.max() == 0


@pytest.mark.parametrize("ksize", [1, 3, 5])
def test_laplacian_of_a_step_is_non_zero_only_near_the_step(ksize):
    gray = np.zeros((32, 32), dtype=np.uint8)
    gray[:, 16:] = 255
    picture = gray_picture(run_tool("EdgeDetectionTool", as_rgb(gray), {"ksize": ksize}))
    columns = np.flatnonzero(picture.any(axis=0))
    reach = max(ksize // 2, 1)
    assert columns.min() >= 16 - reach and columns.max() <= 15 + reach
    assert picture.max() == 255 and np.all(picture[:, 15] == picture[0, 15])  # the same along the edge


# ------------------------------------------------------------------------------------------------ HOG


def hog_reference(gray: np.ndarray, orientations: int, cell: int) -> np.ndarray:
    """skimage's own HOG picture, scaled like the tool's."""
    _, picture = hog(gray, orientations, (cell, cell), (1, 1), visualize=True)
    return np.rint(picture * (255.0 / picture.max())).astype(np.uint8)


@pytest.mark.parametrize(("orientations", "cell"), [(9, 8), (8, 8), (12, 16), (4, 5), (18, 32)])
def test_hog_picture_is_skimages(orientations, cell):
    gray = random_rgb(90, 130, seed=orientations)[..., 0]
    picture = gray_picture(
        run_tool("HOGTool", as_rgb(gray), {"orientations": orientations, "pixels_per_cell": cell})
    )
    # Histograms are accumulated in a different order (skimage sums in float32): allow one grey level.
    assert np.abs(picture.astype(int) - hog_reference(gray, orientations, cell)).max() <= 1


def test_hog_of_vertical_stripes_is_vertical_lines_of_one_orientation():
    gray = np.tile(np.where(np.arange(64) % 4 < 2, 0, 255).astype(np.uint8), (64, 1))
    histograms = cell_orientation_histograms(gray, 9, 8)
    assert histograms[..., 0].sum() >= 0.99 * histograms.sum()  # horizontal gradients: bin [0, 20) degrees
    picture = gray_picture(run_tool("HOGTool", as_rgb(gray), {}))
    for cell_picture in (picture[8:16, 8:16], picture[40:48, 24:32]):
        rows, columns = np.nonzero(cell_picture)
        assert np.ptp(rows) > 2 * np.ptp(columns)


def test_hog_draws_an_odd_bin_counts_middle_bin_as_a_horizontal_line():
    glyph = cell_glyphs(11, 16)[5]  # mid-angle 90 degrees: vertical gradient, horizontal edge
    rows, _ = np.nonzero(glyph)
    assert set(rows.tolist()) == {8}


def test_hog_leaves_pixels_past_the_last_whole_cell_black():
    picture = gray_picture(run_tool("HOGTool", random_rgb(50, 45), {"pixels_per_cell": 16}))
    assert picture[48:].max() == 0 and picture[:, 32:].max() == 0 and picture[:48, :32].max() == 255


def test_hog_cell_larger_than_the_image_is_an_argument_error():
    with pytest.raises(ToolArgumentError, match="pixels_per_cell=32 exceeds the 20x40 image"):
        run_tool("HOGTool", random_rgb(20, 40), {"pixels_per_cell": 32})

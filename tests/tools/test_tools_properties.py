"""Property tests: whatever a policy model or a caller passes, the tools either work or raise a ToolError."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rft.tools import (
    TOOL_NAMES,
    TOOLS,
    ToolArgumentError,
    ToolError,
    ToolInputError,
    run_tool,
    validate_arguments,
)

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
IMAGE = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)


def json_values_with(scalars: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
        ),
        max_leaves=20,
    )


# Integers are drawn as powers of ten: hypothesis cannot print integers beyond Python's 4300-digit limit when
# it reports a failure. Past 10**308 they exceed the float range; past 10**4300 they cannot even be printed.
printable_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=309, max_value=4000).map(lambda exponent: 10**exponent),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_scalars = st.one_of(
    printable_scalars,
    st.integers(min_value=4301, max_value=6000).map(lambda exponent: -(10**exponent)),
)
json_values = json_values_with(json_scalars)
printable_json_values = json_values_with(printable_scalars)


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"bbox": value}
    return value


deep_values = st.integers(min_value=100, max_value=5000).map(nested)
huge_strings = st.integers(min_value=100_000, max_value=2_000_000).map(lambda length: "x" * length)
field_names = st.sampled_from(["bbox", "coordinates", "P", "R", "wavelet", "ksize", "orientations",
                               "pixels_per_cell", "expectation", "size", ""])  # fmt: skip


def plausible_values(values: st.SearchStrategy, scalars: st.SearchStrategy) -> st.SearchStrategy:
    boxes = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), scalars), max_size=6)
    return st.one_of(values, boxes, st.sampled_from([1, 3, 5, 8, "haar", "normalized"]))


shallow_arguments = st.dictionaries(field_names, plausible_values(printable_json_values, printable_scalars))
hostile_arguments = st.dictionaries(
    field_names, st.one_of(plausible_values(json_values, json_scalars), deep_values, huge_strings)
)
deep_json_texts = st.integers(min_value=1, max_value=100_000).map(
    lambda depth: '{"bbox": ' * depth + "[1, 2, 3, 4]" + "}" * depth
)
arguments = st.one_of(
    json_values,
    hostile_arguments,
    deep_values,
    huge_strings,
    shallow_arguments.map(lambda value: json.dumps(value, allow_nan=True)),
    deep_json_texts,
    st.integers(min_value=1, max_value=100_000).map(lambda depth: "[" * depth + "]" * depth),
    st.text(max_size=50),
)
names = st.one_of(st.sampled_from(TOOL_NAMES), st.text(max_size=20), json_values, deep_values, huge_strings)


def assert_is_a_tool_error(error: Exception) -> None:
    assert isinstance(error, ToolError), f"{type(error).__name__}: {error}"
    message = str(error)
    assert "\n" not in message and len(message) < 500


@PROPERTY_SETTINGS
@given(name=names, value=arguments)
def test_validate_arguments_returns_the_tools_model_or_raises_a_tool_error(name, value):
    try:
        validated = validate_arguments(name, value)
    except Exception as error:
        assert_is_a_tool_error(error)
    else:
        assert isinstance(validated, TOOLS[name].arguments)


@PROPERTY_SETTINGS
@given(name=st.sampled_from(TOOL_NAMES), value=arguments)
def test_run_tool_returns_a_picture_or_raises_a_tool_error(name, value):
    try:
        picture = run_tool(name, IMAGE, value, output_size=32)
    except Exception as error:
        assert_is_a_tool_error(error)
    else:
        assert picture.dtype == np.uint8
        assert picture.shape == ((32, 32, 3) if name == "ZoomInTool" else IMAGE.shape)


finite = st.floats(min_value=-100, max_value=100, allow_nan=False)


@st.composite
def valid_calls(draw: st.DrawFn) -> tuple[str, dict]:
    name = draw(st.sampled_from(TOOL_NAMES))
    if name == "ZoomInTool":
        x0, y0 = draw(finite), draw(finite)
        width, height = draw(st.floats(0.01, 100)), draw(st.floats(0.01, 100))
        return name, {"bbox": [x0, y0, x0 + width, y0 + height]}
    strategies = {
        "FFTTool": st.fixed_dictionaries({}),
        "LBPTool": st.fixed_dictionaries({"P": st.integers(4, 16), "R": st.floats(1, 3)}),
        "WaveletTransformTool": st.fixed_dictionaries(
            {"wavelet": st.sampled_from(["haar", "db2", "db4", "sym4", "coif1", "bior1.3"])}
        ),
        "EdgeDetectionTool": st.fixed_dictionaries({"ksize": st.sampled_from([1, 3, 5])}),
        "HOGTool": st.fixed_dictionaries(
            {"orientations": st.integers(4, 18), "pixels_per_cell": st.integers(4, 32)}
        ),
    }
    return name, draw(strategies[name])


@PROPERTY_SETTINGS
@given(call=valid_calls())
def test_valid_calls_give_a_picture_unless_the_box_misses_the_image(call):
    name, call_arguments = call
    try:
        picture = run_tool(name, IMAGE, call_arguments, output_size=32)
    except ToolArgumentError as error:  # the only image-dependent argument errors
        assert ("lies outside" in str(error)) or ("exceeds" in str(error)), str(error)
        return
    assert picture.dtype == np.uint8 and picture.shape[2] == 3
    assert np.array_equal(picture, run_tool(name, IMAGE, call_arguments, output_size=32))


images = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int8, np.uint16, np.int32, np.float32, np.float64, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=40),
)


@PROPERTY_SETTINGS
@given(name=st.sampled_from(TOOL_NAMES), image=images)
def test_arbitrary_arrays_give_a_picture_or_a_tool_input_error(name, image):
    call_arguments = (
        {"bbox": [0.25, 0.25, 0.75, 0.75], "coordinates": "normalized"} if name == "ZoomInTool" else {}
    )
    try:
        picture = run_tool(name, image, call_arguments, output_size=16)
    except ToolInputError as error:
        assert_is_a_tool_error(error)
        return
    assert image.dtype == np.uint8
    assert picture.dtype == np.uint8
    assert picture.shape == ((16, 16, 3) if name == "ZoomInTool" else (*image.shape[:2], 3))

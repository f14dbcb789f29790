"""Property tests: the parsers return a typed result for any text and any tool-call JSON, and never raise."""

import json
import math
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rft.parsing import (
    parse_episode,
    parse_fast_answer,
    parse_reasoning_turn,
    parse_think_answer,
    parse_tool_call,
)
from rft.parsing.strict_json import MAX_JSON_DEPTH
from rft.tools import TOOL_NAMES, validate_arguments

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FRAGMENTS = [
    "<thinking>", "</thinking>", "<answer>", "</answer>", "<think>", "</think>", "<tool_call>", "</tool_call>",
    "<reason>", "</reason>", "<Real>", "<Spoof>", "real", "fake", "Real", " ", "\n", "{", "}", "[", "]", '"name"',
    '"arguments"', ":", ",", '"ZoomInTool"', '"FFTTool"', "NaN", "1e999", '"bbox"', "[1, 2, 3, 4]", "\ud800", "\udcff",
]  # fmt: skip

PROTOCOL_TAG = re.compile("</?(?:think|tool_call|answer|reason)>")

# Any code point, lone surrogates included (st.characters() leaves them out by default).
any_character = st.one_of(st.characters(), st.characters(categories=["Cs"]))
# Bytes from a broken decoder: invalid UTF-8 comes back as surrogate escapes.
undecodable = st.binary().map(lambda raw: raw.decode("utf-8", errors="surrogateescape"))
protocol_soup = st.lists(st.sampled_from(FRAGMENTS) | st.text(any_character, max_size=5), max_size=30).map(
    "".join
)
any_text = st.one_of(st.text(any_character), undecodable, protocol_soup)


@PROPERTY_SETTINGS
@given(any_text)
def test_think_answer_parser_is_total(text):
    parsed = parse_think_answer(text)
    assert parsed.format_ok == (parsed.error is None)
    assert parsed.predicted in (None, "live", "spoof")
    if parsed.format_ok:
        assert parsed.predicted is not None
        assert f"<thinking>{parsed.thinking}</thinking>" in text


@PROPERTY_SETTINGS
@given(any_text)
def test_fast_answer_parser_is_total(text):
    parsed = parse_fast_answer(text)
    assert parsed.format_ok == (parsed.error is None) == (parsed.predicted is not None)


@PROPERTY_SETTINGS
@given(any_text)
def test_reasoning_turn_parser_is_total(text):
    turn = parse_reasoning_turn(text)
    assert turn.kind in ("tool_call", "answer", "malformed")
    assert (turn.kind == "malformed") <= (turn.error is not None)
    assert (turn.tool_call is not None) == (turn.kind == "tool_call")
    if turn.tool_call is not None:
        assert turn.tool_call.valid == turn.format_ok == (turn.tool_call.arguments is not None)


@PROPERTY_SETTINGS
@given(st.lists(any_text, max_size=7), st.integers(0, 4))
def test_episode_parser_is_total(turn_texts, max_tool_calls):
    episode = parse_episode(turn_texts, max_tool_calls)
    assert episode.reasoning_format_ok == (not episode.errors)
    assert len(episode.turns) == max(len(turn_texts) - 1, 0)
    assert episode.ended_without_answer == all(turn.kind != "answer" for turn in episode.turns)
    assert sum(call.valid for call in episode.tool_calls) <= max_tool_calls
    if episode.final_answer is not None:
        assert not episode.ended_without_answer


# Tool-call JSON: arbitrary values, NaN and infinities included, serialised as a model would write them.

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(any_character, max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
tool_names = st.sampled_from(TOOL_NAMES) | st.text(max_size=12)
hermes_calls = st.one_of(
    st.fixed_dictionaries(
        {"name": tool_names, "arguments": st.dictionaries(st.text(max_size=12), json_values, max_size=4)}
    ),
    st.dictionaries(st.sampled_from(["name", "arguments", "id"]), json_values),
    json_values,
)


def has_non_finite_number(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(has_non_finite_number(child) for child in children)


@PROPERTY_SETTINGS
@given(hermes_calls)
def test_tool_call_json_becomes_a_valid_call_or_a_typed_error(value):
    json_text = json.dumps(value)  # allow_nan: writes NaN / Infinity literals as Python would
    call = parse_tool_call(json_text)
    assert call.valid == (call.error is None) == (call.arguments is not None)
    turn = parse_reasoning_turn(f"<think>t</think><tool_call>{json_text}</tool_call>")
    if PROTOCOL_TAG.search(json_text):  # a tag inside a JSON string still breaks the block structure
        assert turn.kind == "malformed"
    else:
        assert (turn.kind, turn.format_ok) == ("tool_call", call.valid)
    if call.valid:
        assert call.name in TOOL_NAMES
        assert not has_non_finite_number(value)
        assert validate_arguments(call.name, value["arguments"]) == call.arguments


@PROPERTY_SETTINGS
@given(st.lists(st.floats() | st.integers(-(10**6), 10**6), min_size=4, max_size=4))
def test_zoom_box_is_valid_exactly_when_finite_and_ordered(bbox):
    call = parse_tool_call(json.dumps({"name": "ZoomInTool", "arguments": {"bbox": bbox}}))
    x0, y0, x1, y1 = bbox
    assert call.valid == (all(math.isfinite(v) for v in bbox) and x0 < x1 and y0 < y1)


@PROPERTY_SETTINGS
@given(st.integers(1, 20_000), st.sampled_from(["[", '{"a": ']))
def test_deeply_nested_tool_call_json_is_an_error(depth, opener):
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    call = parse_tool_call(f'{{"name": "FFTTool", "arguments": {{"x": {nested}}}}}')
    assert not call.valid  # FFTTool takes no x; what matters is which error
    if depth + 2 > MAX_JSON_DEPTH:  # the call object and its arguments are two levels
        assert any(reason in call.error for reason in ("nested", "exceeds the limit"))
    else:
        assert call.error.startswith("FFTTool: ")


MEGABYTE = 1 << 20


def test_megabyte_thinking_is_only_text():
    turn = parse_reasoning_turn(
        "<think>" + "x" * MEGABYTE + '</think><tool_call>{"name": "FFTTool", "arguments": {}}</tool_call>'
    )
    assert turn.format_ok
    assert len(turn.thinking) == MEGABYTE


def test_megabyte_tool_call_is_an_error():
    turn = parse_reasoning_turn(
        '<think>t</think><tool_call>{"name": "' + "A" * MEGABYTE + '", "arguments": {}}</tool_call>'
    )
    assert turn.kind == "tool_call"
    assert "exceeds the limit" in turn.error
    assert len(turn.error) < 400


def test_megabyte_of_tags_is_a_short_format_error():
    turn = parse_reasoning_turn("<think>" * MEGABYTE)
    assert turn.kind == "malformed"
    assert len(turn.error) < 400
    parsed = parse_think_answer("<answer>" * MEGABYTE)
    assert (parsed.format_ok, parsed.predicted) == (False, None)


def test_megabyte_of_deep_json_in_a_turn_is_an_error():
    turn = parse_reasoning_turn("<think>t</think><tool_call>" + "[" * MEGABYTE + "</tool_call>")
    assert turn.kind == "tool_call" and not turn.format_ok

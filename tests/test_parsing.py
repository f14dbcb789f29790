"""The strict response parsers: every format rule of paper 001 and paper 003, and the choices docs/REWARDS.md names."""

import json

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from rft.parsing import (
    as_label,
    parse_episode,
    parse_fast_answer,
    parse_reasoning_turn,
    parse_think_answer,
    parse_tool_call,
)
from rft.parsing.strict_json import MAX_JSON_CHARS, decode_json
from rft.prompts.chat_template import chat_template
from rft.tools.arguments import FFTArguments, ZoomInArguments

FAST_REAL = "<Real><reason>Even skin texture and natural shading.</reason>"
ANSWER_SPOOF = "<think>The zoomed patch shows a moire pattern.</think>\n<answer><Spoof></answer>"


def call_turn(name: str, arguments: object, thinking: str = "Check the cheek.") -> str:
    """A reasoning turn calling a tool, laid out as the chat template renders it."""
    payload = json.dumps({"name": name, "arguments": arguments})
    return f"<think>{thinking}</think>\n<tool_call>\n{payload}\n</tool_call>"


def raw_call_turn(json_text: str) -> str:
    return f"<think>t</think><tool_call>{json_text}</tool_call>"


# Paper 001: <thinking>...</thinking><answer>real|fake</answer>


@pytest.mark.parametrize(
    ("text", "predicted"),
    [
        ("<thinking>Paper edges are visible.</thinking><answer>fake</answer>", "spoof"),
        ("<thinking>Natural skin.</thinking><answer>real</answer>", "live"),
        ("\n  <thinking>a</thinking>\n\n<answer>real</answer>\n", "live"),
        ("<thinking></thinking><answer>fake</answer>", "spoof"),
    ],
)
def test_think_answer_matches_format(text, predicted):
    parsed = parse_think_answer(text)
    assert (parsed.format_ok, parsed.predicted, parsed.error) == (True, predicted, None)


def test_think_answer_keeps_the_thinking_text():
    assert (
        parse_think_answer("<thinking> two\nlines </thinking><answer>real</answer>").thinking
        == " two\nlines "
    )


@pytest.mark.parametrize(
    ("text", "predicted", "error_part"),
    [
        # Text outside the blocks: the format fails, but Eq. 4 still reads the only answer block.
        ("Sure! <thinking>a</thinking><answer>real</answer>", "live", "outside the blocks: 'Sure!'"),
        ("<thinking>a</thinking> so <answer>fake</answer>", "spoof", "outside the blocks: 'so'"),
        ("<thinking>a</thinking><answer>fake</answer>.", "spoof", "outside the blocks: '.'"),
        ("<answer>fake</answer>", "spoof", "found tags: <answer> </answer>"),
        ("<answer>fake</answer><thinking>a</thinking>", "spoof", "found tags: <answer> </answer> <thinking>"),
        # Case and whitespace are exact: the paper's classes are the words real and fake.
        ("<thinking>a</thinking><answer>Real</answer>", None, "exactly 'real' or 'fake', got 'Real'"),
        ("<thinking>a</thinking><answer> real </answer>", None, "got ' real '"),
        ("<thinking>a</thinking><answer>live</answer>", None, "got 'live'"),
        ("<thinking>a</thinking><answer>spoof</answer>", None, "got 'spoof'"),
        # Two answers is hedging: no class at all.
        ("<thinking>a</thinking><answer>real</answer><answer>fake</answer>", None, "..."),
        ("<thinking><thinking>a</thinking></thinking><answer>real</answer>", "live", "<thinking> <thinking>"),
        ("<thinking>the <answer>real</answer> one</thinking><answer>fake</answer>", None, "found tags"),
        ("<thinking>a</thinking>", None, "found tags: <thinking> </thinking>"),
        ("<thinking>a<answer>real</answer>", "live", "found tags: <thinking> <answer> </answer>"),
        ("", None, "found tags: no tags"),
        ("<THINKING>a</THINKING><ANSWER>real</ANSWER>", None, "no tags"),
    ],
)
def test_think_answer_format_errors(text, predicted, error_part):
    parsed = parse_think_answer(text)
    assert parsed.format_ok is False
    assert parsed.predicted == predicted
    assert error_part in parsed.error


def test_think_answer_of_non_text_is_a_format_error():
    parsed = parse_think_answer(None)
    assert (parsed.format_ok, parsed.predicted, parsed.error) == (False, None, "expected text, got NoneType")


# Paper 003, turn 1: <CLS><reason>...</reason>


@pytest.mark.parametrize(
    ("text", "predicted"),
    [
        (FAST_REAL, "live"),
        ("<Spoof><reason>Screen glare.</reason>", "spoof"),
        (" \n<Spoof>\n<reason>Screen glare.</reason>\n", "spoof"),
        ("<Real><reason></reason>", "live"),
        # The class tokens may be mentioned inside the free text.
        ("<Real><reason>Not <Spoof>: the skin is natural.</reason>", "live"),
    ],
)
def test_fast_answer_matches_format(text, predicted):
    parsed = parse_fast_answer(text)
    assert (parsed.format_ok, parsed.predicted, parsed.error) == (True, predicted, None)


def test_fast_answer_keeps_the_explanation():
    assert parse_fast_answer(FAST_REAL).explanation == "Even skin texture and natural shading."


@pytest.mark.parametrize(
    ("text", "error_part"),
    [
        ("<reason>Screen glare.</reason><Spoof>", "expected <Real> or <Spoof> first"),
        ("<real><reason>a</reason>", "expected <Real> or <Spoof> first, got '<real>"),
        ("Real<reason>a</reason>", "got 'Real<reason>"),
        ("<Real>", "found tags: no tags"),
        ("<Real><reason>a</reason><reason>b</reason>", "found tags: <reason> </reason> <reason>"),
        ("<Real><reason>a</reason> because", "outside the blocks: 'because'"),
        ("<Real> I think <reason>a</reason>", "outside the blocks: 'I think'"),
        ("<Real><Spoof><reason>a</reason>", "outside the blocks: '<Spoof>'"),
        ("<Real><think>a</think>", "found tags: <think> </think>"),
        (
            '<Real><reason>a</reason><tool_call>{"name": "FFTTool", "arguments": {}}</tool_call>',
            "<tool_call>",
        ),
        ("<Real><reason>a <answer><Real></answer></reason>", "found tags: <reason> <answer>"),
        ("", "expected <Real> or <Spoof> first, got ''"),
    ],
)
def test_fast_answer_format_errors(text, error_part):
    parsed = parse_fast_answer(text)
    assert (parsed.format_ok, parsed.predicted) == (False, None)
    assert error_part in parsed.error


# Paper 003, reasoning turns: <think>...</think> then <tool_call>{json}</tool_call> or <answer><CLS></answer>


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (ANSWER_SPOOF, "spoof"),
        ("<think>a</think><answer><Real></answer>", "live"),
        ("  <think>a</think>  <answer><Real></answer>  ", "live"),
    ],
)
def test_answer_turn(text, answer):
    turn = parse_reasoning_turn(text)
    assert (turn.kind, turn.answer, turn.tool_call, turn.error) == ("answer", answer, None, None)


@pytest.mark.parametrize(
    "content", ["Real", "<real>", " <Real>", "<Real> ", "<Real><Spoof>", "", "(<Spoof>/<Real>)"]
)
def test_answer_turn_needs_exactly_one_class_token(content):
    turn = parse_reasoning_turn(f"<think>a</think><answer>{content}</answer>")
    assert (turn.kind, turn.answer, turn.format_ok) == ("answer", None, False)
    assert "exactly <Real> or <Spoof>" in turn.error


def test_tool_call_turn_validates_arguments_against_the_tool_schema():
    turn = parse_reasoning_turn(call_turn("ZoomInTool", {"bbox": [10, 20, 110, 120]}, thinking="Zoom in."))
    assert (turn.kind, turn.thinking, turn.error) == ("tool_call", "Zoom in.", None)
    assert turn.tool_call.valid
    assert turn.tool_call.name == "ZoomInTool"
    assert turn.tool_call.arguments == ZoomInArguments(bbox=[10, 20, 110, 120])


def test_tool_call_rendered_by_the_chat_template_parses():
    arguments = {"bbox": [0.1, 0.2, 0.5, 0.6], "coordinates": "normalized"}
    messages = [
        {"role": "user", "content": "Re-examine."},
        {
            "role": "assistant",
            "content": "<think>Look closer.</think>",
            "tool_calls": [{"type": "function", "function": {"name": "ZoomInTool", "arguments": arguments}}],
        },
    ]
    rendered, spans = render_jinja_template(
        [messages], chat_template=chat_template("qwen2_5_vl"), return_assistant_tokens_mask=True
    )
    (start, end), *_ = spans[0]
    generated = rendered[0][start:end].removesuffix("<|im_end|>")  # decoding skips special tokens
    turn = parse_reasoning_turn(generated)
    assert turn.error is None
    assert turn.tool_call.arguments == ZoomInArguments(**arguments)


@pytest.mark.parametrize(
    ("text", "error_part"),
    [
        ("<answer><Real></answer>", "found tags: <answer> </answer>"),
        ("<think>a</think>", "found tags: <think> </think>"),
        (
            "<think>a</think> The image is real. <answer><Real></answer>",
            "outside the blocks: 'The image is real.'",
        ),
        ("I will zoom. " + call_turn("FFTTool", {}), "outside the blocks: 'I will zoom.'"),
        (call_turn("FFTTool", {}) + " Done.", "outside the blocks: 'Done.'"),
        (call_turn("FFTTool", {}) + "<answer><Real></answer>", "found tags: <think> </think> <tool_call>"),
        ("<think>a</think><answer><Real></answer>" + call_turn("FFTTool", {}), "found tags"),
        (call_turn("FFTTool", {}) + call_turn("LBPTool", {}).removeprefix("<think>t</think>"), "found tags"),
        (
            '<think>a</think><tool_call>{"name": "FFTTool", "arguments": {}}',
            "found tags: <think> </think> <tool_call>",
        ),
        ("<think>a <think>b</think></think><answer><Real></answer>", "found tags: <think> <think>"),
        ("<think>a</think><reason>b</reason>", "found tags: <think> </think> <reason>"),
        ("<tool_call>{}</tool_call><think>a</think>", "found tags: <tool_call> </tool_call>"),
        ("", "no tags"),
    ],
)
def test_reasoning_turn_format_errors(text, error_part):
    turn = parse_reasoning_turn(text)
    assert (turn.kind, turn.format_ok) == ("malformed", False)
    assert error_part in turn.error


@pytest.mark.parametrize(
    ("json_text", "error_part"),
    [
        ("not json", "invalid JSON"),
        ('{"name": "FFTTool", "arguments": {}', "invalid JSON"),
        ('{"name": "FFTTool", "arguments": {}} {}', "Extra data"),
        ("[]", "must be a JSON object, got list"),
        ('"FFTTool"', "must be a JSON object, got str"),
        ('{"name": "FFTTool"}', "exactly the keys name and arguments, got 'name'"),
        ('{"name": "FFTTool", "arguments": {}, "id": 1}', "got 'arguments, id, name'"),
        ('{"function": {"name": "FFTTool", "arguments": {}}}', "exactly the keys name and arguments"),
        ('{"name": 3, "arguments": {}}', "tool name must be a string, got int"),
        ('{"name": "FFTTool", "arguments": "{}"}', "arguments must be a JSON object, got str"),
        ('{"name": "FFTTool", "arguments": null}', "arguments must be a JSON object, got NoneType"),
        ('{"name": "CropTool", "arguments": {}}', "CropTool"),
        ('{"name": "ffttool", "arguments": {}}', "ffttool"),
        ('{"name": "FFTTool", "arguments": {"size": 3}}', "size"),
        ('{"name": "ZoomInTool", "arguments": {}}', "bbox"),
        ('{"name": "ZoomInTool", "arguments": {"bbox": [1, 2, 3]}}', "bbox"),
        ('{"name": "ZoomInTool", "arguments": {"bbox": [30, 2, 3, 40]}}', "bbox"),
        ('{"name": "ZoomInTool", "arguments": {"bbox": ["1", 2, 3, 4]}}', "bbox"),
        # Non-standard literals and overflow: python's json would accept them.
        ('{"name": "ZoomInTool", "arguments": {"bbox": [NaN, 0, 10, 10]}}', "non-standard JSON literal NaN"),
        ('{"name": "ZoomInTool", "arguments": {"bbox": [0, 0, Infinity, 10]}}', "literal Infinity"),
        ('{"name": "ZoomInTool", "arguments": {"bbox": [-Infinity, 0, 1, 10]}}', "literal -Infinity"),
        ('{"name": "ZoomInTool", "arguments": {"bbox": [0, 0, 1e999, 10]}}', "1e999 is not finite"),
        ('{"name": "FFTTool", "name": "LBPTool", "arguments": {}}', "duplicate key 'name'"),
        ('{"name": "LBPTool", "arguments": {"P": 8, "P": 16}}', "duplicate key 'P'"),
        ('{"name": "FFTTool\\ud800", "arguments": {}}', "lone UTF-16 surrogate"),
        ('{"name": "LBPTool", "arguments": {"P": ' + "9" * 5000 + "}}", "invalid JSON"),
        ("[" * 100 + "]" * 100, "nested deeper than 32"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        ('{"name": "FFTTool", "arguments": {"expectation": "' + "x" * 20_000 + '"}}', "exceeds the limit"),
        ("", "invalid JSON"),
    ],
)
def test_invalid_tool_calls_are_typed_errors(json_text, error_part):
    call = parse_tool_call(json_text)
    assert not call.valid
    assert call.arguments is None
    assert error_part in call.error
    assert len(call.error) <= 310
    turn = parse_reasoning_turn(raw_call_turn(json_text))
    assert (turn.kind, turn.format_ok) == ("tool_call", False)
    assert turn.error == f"invalid tool call: {call.error}"


def test_tool_call_json_may_be_surrounded_by_whitespace():
    call = parse_tool_call('\n  {"name": "FFTTool", "arguments": {}}  \n')
    assert (call.valid, call.name, call.arguments) == (True, "FFTTool", FFTArguments())


def test_valid_surrogate_pair_escapes_are_accepted():
    call = parse_tool_call('{"name": "FFTTool", "arguments": {"expectation": "moir\\u00e9 \\ud83d\\ude00"}}')
    assert call.valid
    assert call.arguments.expectation == "moiré 😀"


def test_strict_json_limits_are_parameters():
    assert decode_json("[[1]]", max_depth=1) == (None, "JSON nested deeper than 1 levels")
    assert decode_json("[[1]]", max_depth=2) == ([[1]], None)
    assert decode_json("1" * 11, max_chars=10)[1] == "JSON text of 11 characters exceeds the limit of 10"
    assert decode_json(" " * MAX_JSON_CHARS + "1") == (
        None,
        f"JSON text of {MAX_JSON_CHARS + 1} characters exceeds the limit of {MAX_JSON_CHARS}",
    )


# Episodes: turn 1 the fast answer, then reasoning turns ending with an answer.


def test_episode_with_tool_calls_and_answer():
    episode = parse_episode(
        [FAST_REAL, call_turn("ZoomInTool", {"bbox": [0, 0, 50, 50]}), call_turn("FFTTool", {}), ANSWER_SPOOF]
    )
    assert episode.fast.predicted == "live"
    assert [turn.kind for turn in episode.turns] == ["tool_call", "tool_call", "answer"]
    assert [call.name for call in episode.tool_calls] == ["ZoomInTool", "FFTTool"]
    assert all(call.valid for call in episode.tool_calls)
    assert (episode.final_answer, episode.reasoning_format_ok, episode.errors) == ("spoof", True, ())
    assert (episode.ended_without_answer, episode.hit_tool_call_limit) == (False, False)


def test_episode_answering_without_tools():
    episode = parse_episode([FAST_REAL, ANSWER_SPOOF])
    assert (episode.tool_calls, episode.final_answer, episode.reasoning_format_ok) == ((), "spoof", True)


def test_invalid_tool_call_mid_episode_breaks_the_reasoning_format_and_is_listed_invalid():
    bad = raw_call_turn('{"name": "ZoomInTool", "arguments": {"bbox": [NaN, 0, 1, 1]}}')
    episode = parse_episode([FAST_REAL, bad, call_turn("FFTTool", {}), ANSWER_SPOOF])
    assert [call.valid for call in episode.tool_calls] == [False, True]
    assert episode.final_answer == "spoof"
    assert episode.reasoning_format_ok is False
    assert not episode.all_tool_calls_valid
    assert episode.errors == ("turn 2: invalid tool call: invalid JSON: non-standard JSON literal NaN",)


def test_malformed_turn_mid_episode_breaks_the_format_but_keeps_the_answer():
    episode = parse_episode([FAST_REAL, "<think>hmm</think>", ANSWER_SPOOF])
    assert episode.final_answer == "spoof"
    assert episode.errors == (
        "turn 2: expected <think>...</think> <tool_call>...</tool_call>, found tags: <think> </think>",
    )


def test_episode_stopped_at_the_tool_call_limit_has_no_answer_and_no_format_error():
    calls = [call_turn(name, {}) for name in ("FFTTool", "LBPTool", "HOGTool")]
    episode = parse_episode([FAST_REAL, *calls], max_tool_calls=3)
    assert (episode.final_answer, episode.ended_without_answer, episode.hit_tool_call_limit) == (
        None,
        True,
        True,
    )
    assert episode.reasoning_format_ok is True
    assert len(episode.tool_calls) == 3


def test_episode_stopped_before_the_limit_did_not_hit_it():
    episode = parse_episode([FAST_REAL, call_turn("FFTTool", {})], max_tool_calls=3)
    assert (episode.ended_without_answer, episode.hit_tool_call_limit) == (True, False)


def test_tool_call_beyond_the_limit_is_invalid():
    calls = [call_turn(name, {}) for name in ("FFTTool", "LBPTool", "HOGTool", "EdgeDetectionTool")]
    episode = parse_episode([FAST_REAL, *calls], max_tool_calls=3)
    assert [call.valid for call in episode.tool_calls] == [True, True, True, False]
    assert episode.tool_calls[3].error == "tool call beyond the limit of 3"
    assert episode.errors == ("turn 5: invalid tool call: tool call beyond the limit of 3",)
    assert episode.hit_tool_call_limit


def test_invalid_calls_count_toward_the_limit():
    bad = raw_call_turn("{}")
    episode = parse_episode([FAST_REAL, bad, bad, call_turn("FFTTool", {}), ANSWER_SPOOF], max_tool_calls=2)
    assert [call.valid for call in episode.tool_calls] == [False, False, False]
    assert episode.tool_calls[2].error == "tool call beyond the limit of 2"


def test_turns_after_the_answer_break_the_format_and_their_calls_do_not_count():
    episode = parse_episode(
        [FAST_REAL, ANSWER_SPOOF, call_turn("FFTTool", {}), "<think>a</think><answer><Real></answer>"]
    )
    assert episode.final_answer == "spoof"  # the episode ends at its first answer
    assert episode.tool_calls == ()
    assert len(episode.turns) == 3
    assert episode.errors == ("2 turn(s) after the answer of turn 2",)


def test_episode_without_a_reasoning_turn_breaks_the_format():
    episode = parse_episode([FAST_REAL])
    assert episode.fast.format_ok
    assert (episode.final_answer, episode.ended_without_answer, episode.hit_tool_call_limit) == (
        None,
        True,
        False,
    )
    assert episode.errors == ("no reasoning turn",)


def test_empty_episode():
    episode = parse_episode([])
    assert (episode.fast.format_ok, episode.fast.error) == (False, "no turn at all")
    assert episode.errors == ("no reasoning turn",)


def test_episode_with_an_invalid_answer_ended_but_has_no_class():
    episode = parse_episode([FAST_REAL, "<think>a</think><answer>Spoof</answer>"])
    assert (episode.final_answer, episode.ended_without_answer) == (None, False)
    assert episode.errors == ("turn 2: answer must be exactly <Real> or <Spoof>, got 'Spoof'",)


def test_episode_with_non_text_turns():
    episode = parse_episode([None, None])
    assert episode.fast.error == "expected text, got NoneType"
    assert episode.errors == ("turn 2: expected text, got NoneType",)


def test_episode_rejects_a_single_string_and_a_negative_limit():
    with pytest.raises(TypeError, match="not one string"):
        parse_episode(FAST_REAL)
    with pytest.raises(ValueError, match="max_tool_calls"):
        parse_episode([FAST_REAL], max_tool_calls=-1)


@pytest.mark.parametrize(
    ("value", "label"), [("live", "live"), ("spoof", "spoof"), (0, "live"), (1, "spoof")]
)
def test_dataset_labels(value, label):
    assert as_label(value) == label


@pytest.mark.parametrize("value", ["real", "fake", "Live", 2, -1, True, False, None, 0.0, 1.0, ["live"]])
def test_unknown_dataset_labels_raise(value):
    with pytest.raises(ValueError, match="label must be"):
        as_label(value)

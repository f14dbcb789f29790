"""Verification (paper 003, section 3.1.3; paper 002's six stages): what passes and what is dropped, why."""

from __future__ import annotations

import json

import pytest

from rft.annotate.verify import (
    Reason,
    call_arguments,
    canonical_turn,
    caption_stages,
    check_caption,
    check_episode,
    check_fast_answer,
    check_reasoning_turn,
    leak_reason,
    stated_verdict,
)

HINT = "Hint: replay attack (a face shown on a screen)."


@pytest.mark.parametrize(
    "text, reason",
    [
        ("As the hint says, this is a replay.", Reason.HINT_LEAK),
        ("The ground truth is spoof.", Reason.HINT_LEAK),
        ("Given the label, I answer spoof.", Reason.HINT_LEAK),
        ("I was told it is an attack.", Reason.HINT_LEAK),
        ("It is a replay attack (a face shown on a screen), clearly.", Reason.HINT_LEAK),
        ("The expert predicts 87% there's spoof trace.", Reason.EXPERT_LEAK),
        ("With 87 % confidence this is fake.", Reason.EXPERT_LEAK),
        ("Eighty-seven percent sure.", Reason.EXPERT_LEAK),
        ("A score of 0.87 settles it.", Reason.EXPERT_LEAK),
        ("The experts' view matches mine.", Reason.EXPERT_LEAK),
    ],
)
def test_leaks_are_caught(text, reason):
    assert leak_reason(text, HINT, [0.8712]) == reason


@pytest.mark.parametrize(
    "text",
    [
        "Moire peaks in the spectrum point to a replay attack on a screen.",
        "I zoom into the box from 40 to 87 pixels around the eyes.",
        "The face shown here has natural pores.",
        "An expert eye would see the halftone dots.",
    ],
)
def test_analysis_without_leaks_passes(text):
    assert leak_reason(text, HINT, [0.8712]) is None


def _call(name: str, arguments: dict) -> str:
    return f"<think>Check it.</think>\n<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def test_reasoning_turn_checks_format_schema_and_leaks():
    turn, reason = check_reasoning_turn(_call("ZoomInTool", {"bbox": [1, 2, 30, 40]}), HINT, [])
    assert reason is None and turn.tool_call.name == "ZoomInTool"
    assert (
        check_reasoning_turn(_call("ZoomInTool", {"bbox": "eyes"}), HINT, [])[1] == Reason.INVALID_TOOL_CALL
    )
    assert check_reasoning_turn(_call("MagicTool", {}), HINT, [])[1] == Reason.INVALID_TOOL_CALL
    assert check_reasoning_turn("I think it is real.", HINT, [])[1] == Reason.UNPARSEABLE_TURN
    assert (
        check_reasoning_turn("<think> </think><answer><Real></answer>", HINT, [])[1] == Reason.EMPTY_ANALYSIS
    )
    leaky = _call("FFTTool", {"expectation": "the hint says replay"})
    assert check_reasoning_turn(leaky, HINT, [])[1] == Reason.HINT_LEAK


def test_canonical_turn_keeps_the_teachers_arguments_and_parses_again():
    text = '<think> look </think><tool_call>{"name": "ZoomInTool", "arguments": {"bbox": [1, 2.5, 30, 40]}}</tool_call>'
    turn, reason = check_reasoning_turn(text, HINT, [])
    assert reason is None
    arguments = call_arguments(text)
    assert arguments == {"bbox": [1, 2.5, 30, 40]}
    canonical = canonical_turn(turn, arguments)
    assert canonical == (
        '<think>look</think>\n<tool_call>\n{"name": "ZoomInTool", "arguments": {"bbox": [1, 2.5, 30, 40]}}\n</tool_call>'
    )
    assert check_reasoning_turn(canonical, HINT, [])[1] is None


def test_fast_answer_must_match_the_label_and_not_leak():
    assert check_fast_answer("<Spoof><reason> Moire over the skin. </reason>", "spoof", HINT) == (
        "<Spoof><reason>Moire over the skin.</reason>",
        None,
    )
    assert check_fast_answer("<Real><reason>Fine skin.</reason>", "spoof", HINT) == (
        None,
        Reason.WRONG_ANSWER,
    )
    assert check_fast_answer("Spoof, because moire.", "spoof", HINT) == (None, Reason.UNPARSEABLE_TURN)
    assert check_fast_answer("<Spoof><reason>The hint.</reason>", "spoof", HINT) == (None, Reason.HINT_LEAK)


def test_episode_check_is_the_trainers_parse():
    fast = "<Spoof><reason>Flat.</reason>"
    call = _call("FFTTool", {})
    answer = "<think>Peaks.</think>\n<answer><Spoof></answer>"
    assert check_episode([fast, call, answer], "spoof", 3, 1) is None
    assert check_episode([fast, call, answer], "live", 3, 1) == Reason.WRONG_ANSWER
    assert check_episode([fast, answer], "spoof", 3, 1) == Reason.NO_TOOL_CALL
    assert check_episode([fast, answer], "spoof", 3, 0) is None
    assert check_episode([fast, call, call, call, call, answer], "spoof", 3, 1) == Reason.EPISODE_FORMAT
    assert check_episode([fast, call], "spoof", 3, 1) == Reason.EPISODE_FORMAT


SIX = """**1. Initial observation:** The face looks flat.
**2. Artifact detection:** A fine grid covers the skin.
3) Feature analysis - The eyes lack detail.
### 4. Examine lighting and shadows
Shading is uniform.
5. Consider context: A dark room.
6. Final judgment: The image is a spoof (a replay)."""


def test_caption_stages_found_with_markdown_headings():
    stages = caption_stages(SIX)
    assert list(stages) == [
        "initial_observation",
        "artifact_detection",
        "feature_analysis",
        "lighting_and_shadows",
        "context",
        "final_judgment",
    ]
    assert stages["final_judgment"] == "The image is a spoof (a replay)."
    assert check_caption(SIX, "spoof", reasoning=True, hint=HINT) is None
    assert check_caption(SIX, "live", reasoning=True, hint=HINT) == Reason.CAPTION_WRONG_JUDGMENT


def test_caption_with_a_missing_or_misplaced_stage_is_rejected():
    assert caption_stages(SIX.replace("5. Consider context:", "Also:")) is None
    swapped = SIX.replace("2. Artifact detection", "2. Feature analysis").replace(
        "3) Feature analysis", "3) Artifact detection"
    )
    assert caption_stages(swapped) is None
    assert (
        check_caption(SIX.replace("Final judgment", "Summary"), "spoof", True, HINT)
        == Reason.CAPTION_MISSING_STAGES
    )
    # a word inside a sentence is not a heading
    assert (
        caption_stages("We consider context later. " + SIX.replace("5. Consider context: A dark room.\n", ""))
        is None
    )


@pytest.mark.parametrize(
    "text, verdict",
    [
        ("These characteristics indicate that the image is a spoof.", "spoof"),
        ("The face appears to be genuine.", "live"),
        ("This is not a real face.", "spoof"),
        ("The image is not a spoof.", "live"),
        ("The texture is regular. Overall, the image is a live face.", "live"),
        ("It is likely a replay attack.", "spoof"),
        ("The lighting is even.", None),
        ("It is real or spoof, hard to say.", None),
        ("There are no visible signs of spoofing, so the image is real.", "live"),
        ("The image is a spoof, not a real face.", "spoof"),
        ("After real-time analysis, the image is a spoof.", "spoof"),
    ],
)
def test_stated_verdict(text, verdict):
    assert stated_verdict(text) == verdict


def test_vanilla_caption_needs_a_judgment_that_matches():
    assert check_caption("Smooth lighting. The image is a real face.", "live", False, HINT) is None
    assert check_caption("Smooth lighting everywhere.", "live", False, HINT) == Reason.CAPTION_NO_JUDGMENT
    assert check_caption("   ", "live", False, HINT) == Reason.CAPTION_EMPTY
    assert check_caption("As I was told, the image is a spoof.", "spoof", False, HINT) == Reason.HINT_LEAK

"""Verification of annotations (paper 003, section 3.1.3; paper 002's caption constraints).

* Correctness: the final answer (or a caption's judgment) equals the label.
* Format: every turn parses in the training format (rft.parsing.tar_fas), tool calls are valid against the
  schemas, and the analysis leaks neither the ground-truth hint nor an expert confidence.
* Captions: a reasoning caption has all six stages of paper 002's Figure 3, in order.

Manual verification (the paper's third check) is left to people: every journal record keeps the teacher's
raw turns for review.

Each check returns None when it passes, or a short reason from `Reason` (the drop reasons of the summary).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum

from rft.parsing.strict_json import decode_json
from rft.parsing.tar_fas import ReasoningTurn, parse_episode, parse_fast_answer, parse_reasoning_turn
from rft.prompts.tar_fas import ANSWER_REAL, ANSWER_SPOOF

_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


class Reason(StrEnum):
    """Why an attempt failed (and, for the last attempt, why a sample was dropped)."""

    TEACHER_TIMEOUT = "teacher_timeout"
    TEACHER_HTTP_ERROR = "teacher_http_error"
    TEACHER_BAD_RESPONSE = "teacher_bad_response"
    UNPARSEABLE_TURN = "unparseable_turn"
    INVALID_TOOL_CALL = "invalid_tool_call"
    TOOL_ERROR = "tool_error"
    TOO_MANY_TOOL_CALLS = "too_many_tool_calls"
    NO_ANSWER = "no_answer"
    NO_TOOL_CALL = "no_tool_call"
    EMPTY_ANALYSIS = "empty_analysis"
    WRONG_ANSWER = "wrong_answer"
    HINT_LEAK = "hint_leak"
    EXPERT_LEAK = "expert_leak"
    EPISODE_FORMAT = "episode_format"
    CAPTION_EMPTY = "caption_empty"
    CAPTION_MISSING_STAGES = "caption_missing_stages"
    CAPTION_NO_JUDGMENT = "caption_no_judgment"
    CAPTION_WRONG_JUDGMENT = "caption_wrong_judgment"
    FAST_ANSWER_MISSING = "fast_answer_missing"
    TOOL_OUTPUT_CHANGED = "tool_output_changed"
    UNREADABLE_IMAGE = "unreadable_image"


# ------------------------------------------------------------------------------------------ leaks

# References to the hint or the ground truth. The attack's *name* is not a leak: concluding "this is a
# replay attack" from moire is exactly the analysis wanted; saying that one was told so is the leak.
HINT_PATTERNS = [
    r"\bhint(?:s|ed)?\b",
    r"\bground[- ]?truth\b",
    r"\b(?:the|a|given|provided|true)\s+label\b",
    r"\b(?:i was|we were|i am|we are|i've been|we've been|as) (?:told|given|informed)\b",
    r"\bas (?:stated|indicated|mentioned|specified) (?:above|before|earlier|in the (?:prompt|question))\b",
]
# Expert confidence: any percentage, the expert itself, or a probability quoted as a decimal.
EXPERT_PATTERNS = [
    r"\bexpert(?:s|'s)?\b(?!\s+(?:eye|analysis|analyst|forensic))",
    r"\d\s*%",
    r"\bper\s?cent\b",
    r"\b(?:model|classifier|network|detector)\s+(?:predicts|predicted|prediction|score|confidence)\b",
]
_HINT = re.compile("|".join(HINT_PATTERNS), re.IGNORECASE)
_EXPERT = re.compile("|".join(EXPERT_PATTERNS), re.IGNORECASE)


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def leak_reason(
    text: str, hint: str | None = None, expert_probabilities: Iterable[float] = ()
) -> Reason | None:
    """HINT_LEAK if `text` refers to the hint (or copies its wording whole), EXPERT_LEAK if it quotes an
    expert or a confidence; None otherwise."""
    if _HINT.search(text):
        return Reason.HINT_LEAK
    if hint:
        core = _normalised(hint.removeprefix("Hint:"))
        if core and core in _normalised(text):
            return Reason.HINT_LEAK
    if _EXPERT.search(text):
        return Reason.EXPERT_LEAK
    for probability in expert_probabilities:
        # "0.87" (not a pixel coordinate, which is what plain numbers in the analysis usually are)
        if re.search(rf"(?<![\d.]){probability:.2f}(?!\d)", text):
            return Reason.EXPERT_LEAK
    return None


# ------------------------------------------------------------------------- turns and episodes

ANSWER_TOKEN = {"live": ANSWER_REAL, "spoof": ANSWER_SPOOF}


def canonical_fast_answer(label: str, explanation: str) -> str:
    """s^(0) of paper 003 in the exact form the policy is trained on: `<Spoof><reason>...</reason>`."""
    return f"{ANSWER_TOKEN[label]}<reason>{explanation.strip()}</reason>"


def canonical_turn(turn: ReasoningTurn, arguments: dict | None = None) -> str:
    """A parsed reasoning turn re-rendered the way the chat template renders a Hermes call, so every stored
    turn has one layout whichever teacher wrote it."""
    thinking = (turn.thinking or "").strip()
    if turn.kind == "answer":
        return f"<think>{thinking}</think>\n<answer>{ANSWER_TOKEN[turn.answer]}</answer>"
    call = json.dumps({"name": turn.tool_call.name, "arguments": arguments or {}}, ensure_ascii=False)
    return f"<think>{thinking}</think>\n<tool_call>\n{call}\n</tool_call>"


def call_arguments(text: str) -> dict:
    """The "arguments" object of the tool call in `text`, exactly as the teacher wrote it (call this only on
    a turn that `check_reasoning_turn` accepted: its JSON decodes and validates)."""
    match = _TOOL_CALL.search(text)
    value, error = decode_json(match.group(1)) if match else (None, "no tool call")
    if error is not None or not isinstance(value, dict):
        raise ValueError(f"not a verified tool-call turn: {error}")
    return value["arguments"]


def check_reasoning_turn(
    text: str, hint: str, expert_probabilities: Sequence[float]
) -> tuple[ReasoningTurn, Reason | None]:
    """Parse one teacher turn and check its format and leaks (section 3.1.3, format verification)."""
    turn = parse_reasoning_turn(text)
    if turn.error is not None:
        return turn, Reason.INVALID_TOOL_CALL if turn.kind == "tool_call" else Reason.UNPARSEABLE_TURN
    if not (turn.thinking or "").strip():
        return turn, Reason.EMPTY_ANALYSIS
    analysis = turn.thinking
    if turn.kind == "tool_call":
        analysis += "\n" + turn.tool_call.arguments.expectation
    return turn, leak_reason(analysis, hint, expert_probabilities)


def check_fast_answer(text: str, label: str, hint: str) -> tuple[str | None, Reason | None]:
    """(canonical fast answer, None) or (None, reason) for a teacher's knowledge-transfer reply."""
    fast = parse_fast_answer(text.strip())
    if not fast.format_ok:
        return None, Reason.UNPARSEABLE_TURN
    if not (fast.explanation or "").strip():
        return None, Reason.EMPTY_ANALYSIS
    if fast.predicted != label:
        return None, Reason.WRONG_ANSWER
    leak = leak_reason(fast.explanation, hint)
    if leak is not None:
        return None, leak
    return canonical_fast_answer(label, fast.explanation), None


def check_episode(
    turn_texts: Sequence[str], label: str, max_tool_calls: int, min_tool_calls: int
) -> Reason | None:
    """The stored trajectory as the trainer and the rewards will read it: no parse error, the final answer
    equals the label, and at least `min_tool_calls` tool calls."""
    episode = parse_episode(list(turn_texts), max_tool_calls=max_tool_calls)
    if not episode.fast.format_ok or episode.errors or episode.ended_without_answer:
        return Reason.EPISODE_FORMAT
    if episode.final_answer != label:
        return Reason.WRONG_ANSWER
    if len(episode.tool_calls) < min_tool_calls:
        return Reason.NO_TOOL_CALL
    return None


# ------------------------------------------------------------------------------------ captions

# The six stages of paper 002 (Figure 3), each as the heading a caption must carry, in this order.
STAGES: tuple[tuple[str, str], ...] = (
    ("initial_observation", r"initial\s+observations?"),
    ("artifact_detection", r"artifacts?\s+detection|detecting\s+artifacts?"),
    ("feature_analysis", r"features?\s+analysis|analy[sz]ing\s+features"),
    ("lighting_and_shadows", r"(?:examine\s+|examining\s+)?lighting\s+(?:and|&)\s+shadows?"),
    ("context", r"(?:consider(?:ing)?\s+(?:the\s+)?)?context"),
    ("final_judgment", r"(?:make\s+a\s+)?final\s+judge?ment"),
)
# A heading starts a line: optional markdown (#, *, -), optional step number, the stage name, then ":" / "-"
# / end of line / closing "**".
_HEADING = (
    r"(?im)^[ \t>#*_-]*(?:step\s*)?(?:\d\s*[.):]\s*)?[ \t*_]*(?:{name})\b[ \t*_]*(?::|-|\u2014|\u2013|$)"
)


def caption_stages(text: str) -> dict[str, str] | None:
    """The text of each of the six stages, or None unless all six headings appear in order."""
    positions = []
    for key, name in STAGES:
        start = positions[-1][2] if positions else 0
        match = re.compile(_HEADING.format(name=name)).search(text, start)
        if match is None:
            return None
        positions.append((key, match.start(), match.end()))
    sections = {}
    for index, (key, _, body_start) in enumerate(positions):
        body_end = positions[index + 1][1] if index + 1 < len(positions) else len(text)
        sections[key] = text[body_start:body_end].strip()
    return sections


_SPOOF_WORDS = r"spoof(?:ed|ing)?|fake|forg(?:ery|ed)|presentation\s+attack|(?:print|replay|mask|partial)\s+attack|not\s+(?:a\s+)?(?:real|live|genuine|authentic)"
_LIVE_WORDS = r"real|live|genuine|authentic|bona\s*fide|not\s+(?:a\s+)?(?:spoof(?:ed)?|fake|forgery)"
_VERDICT = re.compile(
    rf"\b(?:is|be|as|appears\s+to\s+be|likely|consistent\s+with|indicat\w+|conclu\w+|classif\w+|judg\w+)"
    rf"\s+(?:\w+\s+){{0,3}}?(?P<verdict>{_SPOOF_WORDS}|{_LIVE_WORDS})\b",
    re.IGNORECASE,
)


def stated_verdict(text: str) -> str | None:
    """'spoof' / 'live' as the text's last sentence with a verdict states it ("... is a spoof", "appears to be
    real", "not a genuine face"); None when no sentence states one or the deciding sentence names both classes
    ("it is real or spoof"). Negated class words ("no signs of spoofing", "not a real face") count for the
    other class."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
    for sentence in reversed(sentences):
        verdicts = {_verdict_class(match.group("verdict")) for match in _VERDICT.finditer(sentence)}
        if verdicts:
            verdicts |= _class_words(sentence)
            return verdicts.pop() if len(verdicts) == 1 else None
    return None


def _verdict_class(words: str) -> str:
    words = " ".join(words.lower().split())
    if words.startswith("not "):
        return "live" if re.search(r"spoof|fake|forgery", words) else "spoof"
    return "spoof" if re.fullmatch(_SPOOF_WORDS, words, re.IGNORECASE) else "live"


_SPOOF_TOKENS = {"spoof", "spoofed", "spoofing", "fake", "forged", "forgery", "attack"}
_LIVE_TOKENS = {"real", "live", "genuine", "authentic", "bona"}
_NEGATORS = {"no", "not", "without", "absence", "lack", "lacks", "free", "nor", "never", "t"}
NEGATION_WINDOW = (
    5  # "lacks the texture of a real face": the negator may sit a few words before the class word
)


def _class_words(sentence: str) -> set[str]:
    """The classes a sentence's bare class words name, each flipped when negated shortly before."""
    words = re.findall(r"[a-z]+", re.sub(r"real[- ]time", " ", sentence.lower()))
    classes = set()
    for index, word in enumerate(words):
        if word in _SPOOF_TOKENS or word in _LIVE_TOKENS:
            negated = any(w in _NEGATORS for w in words[max(0, index - NEGATION_WINDOW) : index])
            spoof = (word in _SPOOF_TOKENS) != negated
            classes.add("spoof" if spoof else "live")
    return classes


def check_caption(text: str, label: str, reasoning: bool, hint: str) -> Reason | None:
    """A caption's checks: non-empty; six stages in order (reasoning); a judgment that equals the label
    (the final-judgment stage for reasoning captions, the last verdict sentence for vanilla ones); no
    reference to the hint."""
    if not text.strip():
        return Reason.CAPTION_EMPTY
    judged = text
    if reasoning:
        stages = caption_stages(text)
        if stages is None:
            return Reason.CAPTION_MISSING_STAGES
        judged = stages["final_judgment"]
    verdict = stated_verdict(judged)
    if verdict is None:
        return Reason.CAPTION_NO_JUDGMENT
    if verdict != label:
        return Reason.CAPTION_WRONG_JUDGMENT
    return leak_reason(text, hint)

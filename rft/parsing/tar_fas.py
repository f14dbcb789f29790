"""Parsers of paper 003's (TAR-FAS) turns and whole episodes.

An episode is the model's text of each turn: turn 1 is the fast answer `<CLS><reason>...</reason>` with
CLS one of `<Real>` / `<Spoof>` (Appendix B.2), every later turn a reasoning turn, `<think>...</think>`
followed by either one Hermes tool call `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` or the
final answer `<answer><Real></answer>` / `<answer><Spoof></answer>` (Appendix B.1/B.2). Whitespace is allowed
around and between blocks; the protocol's tags may appear nowhere else (rft.parsing.blocks). The class
tokens are exact and case-sensitive, like the tokens the format declaration spells out.

A tool call is valid when its JSON is strict (rft.parsing.strict_json), is an object with exactly the keys
`name` and `arguments`, and `rft.tools.validate_arguments` accepts it. Nothing here raises on model text:
every problem becomes an error string on the turn, the call or the episode.

Episode-level choices (docs/REWARDS.md): the episode ends at its first answer turn, and any turn after it
breaks the reasoning format; tool calls are numbered over the turns that attempt one, valid or not, and a
call numbered beyond `max_tool_calls` is invalid (the rollout would not run it); an episode with no
reasoning turn, or that stops without an answer, has no final answer; only the former breaks the format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from rft.parsing.blocks import clip, match_blocks, scan_tags, tag_pattern
from rft.parsing.labels import Label
from rft.parsing.strict_json import decode_json
from rft.prompts.tar_fas import ANSWER_REAL, ANSWER_SPOOF
from rft.tools import ToolError, validate_arguments

# Paper 003 section 4.1 / Appendix C.2.4: at most 3 tool calls per episode.
DEFAULT_MAX_TOOL_CALLS = 3
CLASS_BY_TOKEN: dict[str, Label] = {ANSWER_REAL: "live", ANSWER_SPOOF: "spoof"}
MESSAGE_CHARS = 300

_TAGS = tag_pattern(["think", "tool_call", "answer", "reason"])

TurnKind = Literal["tool_call", "answer", "malformed"]


@dataclass(frozen=True, slots=True)
class FastAnswer:
    """Turn 1. `explanation` is the <reason> text; `error` says why the format is wrong (None when right)."""

    format_ok: bool
    predicted: Label | None
    explanation: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call; `arguments` is the tool's validated argument model, `error` why the call is invalid."""

    name: str | None
    arguments: BaseModel | None
    error: str | None

    @property
    def valid(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ReasoningTurn:
    """A reasoning turn. `error` covers both a wrong format and an invalid tool call (Eq. 11's two cases)."""

    kind: TurnKind
    thinking: str | None
    tool_call: ToolCall | None
    answer: Label | None
    error: str | None

    @property
    def format_ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ParsedEpisode:
    """A whole episode.

    `turns` are all reasoning turns as given (turn 2 onward); `tool_calls` are the calls of the turns up to
    the first answer (turns 2..L-1 of Eq. 12), each valid or not; `errors` lists every reason the reasoning
    format is broken, prefixed by the paper's turn number (turn 1 is the fast answer).
    """

    fast: FastAnswer
    turns: tuple[ReasoningTurn, ...]
    tool_calls: tuple[ToolCall, ...]
    final_answer: Label | None
    ended_without_answer: bool
    hit_tool_call_limit: bool
    errors: tuple[str, ...]

    @property
    def reasoning_format_ok(self) -> bool:
        return not self.errors

    @property
    def all_tool_calls_valid(self) -> bool:
        return all(call.valid for call in self.tool_calls)


def _shorten(message: str) -> str:
    return message if len(message) <= MESSAGE_CHARS else message[:MESSAGE_CHARS] + "..."


def _not_text(value: object) -> str:
    return f"expected text, got {type(value).__name__}"


def parse_fast_answer(text: str) -> FastAnswer:
    """Parse turn 1, `<Real><reason>...</reason>` or `<Spoof><reason>...</reason>`; never raises."""
    if not isinstance(text, str):  # a rollout may hand over None for a turn it could not generate
        return FastAnswer(False, None, None, _not_text(text))
    stripped = text.lstrip()
    token = next((token for token in CLASS_BY_TOKEN if stripped.startswith(token)), None)
    if token is None:
        return FastAnswer(False, None, None, f"expected <Real> or <Spoof> first, got {clip(stripped)}")
    rest = stripped[len(token) :]
    contents, error = match_blocks(rest, scan_tags(rest, _TAGS, max_blocks=1), ["reason"])
    if contents is None:
        return FastAnswer(False, None, None, error)
    return FastAnswer(True, CLASS_BY_TOKEN[token], contents[0], None)


def _call_fields(value: object) -> tuple[str | None, dict | None, str | None]:
    """(name, arguments, None) from a decoded Hermes call, or what is known with the reason it is wrong."""
    if not isinstance(value, dict):
        return None, None, f"tool call must be a JSON object, got {type(value).__name__}"
    if set(value) != {"name", "arguments"}:
        keys = clip(", ".join(sorted(value)))
        return None, None, f"tool call must have exactly the keys name and arguments, got {keys}"
    name, arguments = value["name"], value["arguments"]
    if not isinstance(name, str):
        return None, None, f"tool name must be a string, got {type(name).__name__}"
    if not isinstance(arguments, dict):
        return name, None, f"arguments must be a JSON object, got {type(arguments).__name__}"
    return name, arguments, None


def parse_tool_call(json_text: str) -> ToolCall:
    """Decode and validate the JSON inside <tool_call></tool_call>; never raises."""
    value, error = decode_json(json_text)
    if error is not None:
        return ToolCall(None, None, _shorten(error))
    name, arguments, error = _call_fields(value)
    if error is not None:
        return ToolCall(name, None, error)
    try:
        validated = validate_arguments(name, arguments)
    except ToolError as rejection:  # UnknownToolError, ToolArgumentError
        return ToolCall(name, None, _shorten(str(rejection)))
    return ToolCall(name, validated, None)


def _answer_turn(thinking: str, content: str) -> ReasoningTurn:
    if content in CLASS_BY_TOKEN:
        return ReasoningTurn("answer", thinking, None, CLASS_BY_TOKEN[content], None)
    error = f"answer must be exactly <Real> or <Spoof>, got {clip(content)}"
    return ReasoningTurn("answer", thinking, None, None, error)


def _tool_call_turn(thinking: str, json_text: str) -> ReasoningTurn:
    call = parse_tool_call(json_text)
    error = None if call.valid else f"invalid tool call: {call.error}"
    return ReasoningTurn("tool_call", thinking, call, None, error)


def parse_reasoning_turn(text: str) -> ReasoningTurn:
    """Parse a reasoning turn (turn 2 onward); never raises."""
    if not isinstance(text, str):
        return ReasoningTurn("malformed", None, None, None, _not_text(text))
    tags = scan_tags(text, _TAGS, max_blocks=2)
    # The tags found decide which of the two grammars the message should be compared with.
    action = "answer" if any(tag.group() == "<answer>" for tag in tags) else "tool_call"
    contents, error = match_blocks(text, tags, ["think", action])
    if contents is None:
        return ReasoningTurn("malformed", None, None, None, error)
    thinking, content = contents
    return _answer_turn(thinking, content) if action == "answer" else _tool_call_turn(thinking, content)


def _beyond_limit(turn: ReasoningTurn, max_tool_calls: int) -> ReasoningTurn:
    """The turn with its (otherwise valid) call marked invalid: the rollout runs no call past the limit."""
    if turn.tool_call is None or not turn.tool_call.valid:
        return turn
    error = f"tool call beyond the limit of {max_tool_calls}"
    call = dataclasses.replace(turn.tool_call, error=error)
    return dataclasses.replace(turn, tool_call=call, error=f"invalid tool call: {error}")


def _enforce_tool_call_limit(turns: Sequence[ReasoningTurn], max_tool_calls: int) -> list[ReasoningTurn]:
    enforced, attempts = [], 0
    for turn in turns:
        attempts += turn.kind == "tool_call"
        enforced.append(_beyond_limit(turn, max_tool_calls) if attempts > max_tool_calls else turn)
    return enforced


def _first_answer_index(turns: Sequence[ReasoningTurn]) -> int | None:
    return next((index for index, turn in enumerate(turns) if turn.kind == "answer"), None)


def _episode_errors(turns: Sequence[ReasoningTurn], played: Sequence[ReasoningTurn]) -> list[str]:
    """Why the reasoning format is broken, numbered as the paper numbers turns (reasoning starts at 2)."""
    if not turns:
        return ["no reasoning turn"]
    errors = [f"turn {index + 2}: {turn.error}" for index, turn in enumerate(played) if turn.error]
    if len(played) < len(turns):
        errors.append(f"{len(turns) - len(played)} turn(s) after the answer of turn {len(played) + 1}")
    return errors


def parse_episode(turn_texts: Sequence[str], max_tool_calls: int = DEFAULT_MAX_TOOL_CALLS) -> ParsedEpisode:
    """Parse the model's text of each turn of an episode (turn 1 = the fast answer); never raises on text."""
    if isinstance(turn_texts, str):
        raise TypeError("turn_texts must be a sequence of turn texts, not one string")
    if max_tool_calls < 0:
        raise ValueError(f"max_tool_calls must be >= 0, got {max_tool_calls}")
    fast = parse_fast_answer(turn_texts[0]) if turn_texts else FastAnswer(False, None, None, "no turn at all")
    parsed = [parse_reasoning_turn(text) for text in turn_texts[1:]]
    turns = _enforce_tool_call_limit(parsed, max_tool_calls)
    answer_index = _first_answer_index(turns)
    played = turns if answer_index is None else turns[: answer_index + 1]
    tool_calls = tuple(turn.tool_call for turn in played if turn.tool_call is not None)
    return ParsedEpisode(
        fast=fast,
        turns=tuple(turns),
        tool_calls=tool_calls,
        final_answer=None if answer_index is None else turns[answer_index].answer,
        ended_without_answer=answer_index is None,
        hit_tool_call_limit=answer_index is None and len(tool_calls) >= max_tool_calls,
        errors=tuple(_episode_errors(turns, played)),
    )

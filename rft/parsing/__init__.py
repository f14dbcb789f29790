"""Strict parsers of the policies' responses: typed results or the reason a format is wrong, never an exception.

- `parse_think_answer`: paper 001's `<thinking>...</thinking><answer>real|fake</answer>`.
- `parse_fast_answer`, `parse_reasoning_turn`, `parse_tool_call`, `parse_episode`: paper 003's turns.
"""

from rft.parsing.labels import Label, as_label
from rft.parsing.rft_fas import ThinkAnswer, parse_think_answer
from rft.parsing.tar_fas import (
    DEFAULT_MAX_TOOL_CALLS,
    FastAnswer,
    ParsedEpisode,
    ReasoningTurn,
    ToolCall,
    parse_episode,
    parse_fast_answer,
    parse_reasoning_turn,
    parse_tool_call,
)

__all__ = [
    "DEFAULT_MAX_TOOL_CALLS",
    "FastAnswer",
    "Label",
    "ParsedEpisode",
    "ReasoningTurn",
    "ThinkAnswer",
    "ToolCall",
    "as_label",
    "parse_episode",
    "parse_fast_answer",
    "parse_reasoning_turn",
    "parse_think_answer",
    "parse_tool_call",
]

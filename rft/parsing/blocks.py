"""Matching a response against an exact sequence of tagged blocks, such as <think>...</think><answer>...</answer>.

A response matches when the protocol's tags occur exactly as the expected blocks' delimiters, in order, and
everything outside the blocks is whitespace. A protocol tag anywhere else (a nested or repeated block, an
<answer> inside the thinking) is a mismatch: the parsers are strict so that the reward cannot be earned by
a response whose structure is ambiguous.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence

CLIP_CHARS = 80


def clip(text: str, limit: int = CLIP_CHARS) -> str:
    """A short printable quote of `text` for error messages (repr escapes control characters and surrogates)."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def tag_pattern(block_names: Iterable[str]) -> re.Pattern[str]:
    """A pattern that finds the opening and closing tags of the named blocks."""
    return re.compile("</?(?:" + "|".join(re.escape(name) for name in block_names) + ")>")


def scan_tags(text: str, pattern: re.Pattern[str], max_blocks: int) -> list[re.Match[str]]:
    """The protocol tags of `text`, at most one more than `max_blocks` blocks have (enough to reject it)."""
    return list(itertools.islice(pattern.finditer(text), 2 * max_blocks + 1))


def delimiters(block_names: Sequence[str]) -> list[str]:
    return [tag for name in block_names for tag in (f"<{name}>", f"</{name}>")]


def _describe_expected(block_names: Sequence[str]) -> str:
    return " ".join(f"<{name}>...</{name}>" for name in block_names)


def match_blocks(
    text: str, tags: Sequence[re.Match[str]], block_names: Sequence[str]
) -> tuple[tuple[str, ...] | None, str | None]:
    """(contents of each block, None) when `text` is exactly those blocks, else (None, the reason).

    `tags` are the protocol tags found in `text` by `scan_tags`.
    """
    expected = delimiters(block_names)
    if [tag.group() for tag in tags] != expected:
        found = " ".join(tag.group() for tag in tags) or "no tags"
        more = " ..." if len(tags) > len(expected) else ""  # the scan stops one tag past the grammar
        return None, f"expected {_describe_expected(block_names)}, found tags: {found}{more}"
    edges = [0, *(position for tag in tags for position in (tag.start(), tag.end())), len(text)]
    # The text between consecutive tags alternates: outside, block content, outside, ..., outside.
    gaps = [text[start:end] for start, end in zip(edges[0::2], edges[1::2], strict=True)]
    outside, contents = gaps[0::2], gaps[1::2]
    stray = next((segment for segment in outside if segment.strip()), None)
    if stray is not None:
        return None, f"text outside the blocks: {clip(stray.strip())}"
    return tuple(contents), None

"""JSON decoding that returns a value or the reason the text is not acceptable JSON, and never raises.

Stricter than `json.loads` where the standard library is lenient in ways a policy can exploit or that make
a tool call ambiguous: the non-standard literals `NaN`, `Infinity` and `-Infinity` are rejected (RFC 8259 has
no such values, and a NaN box must never reach a tool), as are numbers that overflow to infinity (`1e999`),
duplicate object keys (which value wins is a library accident), lone UTF-16 surrogates (they cannot be
encoded as UTF-8, so no tool or log could use them), texts longer than `max_chars`, and nesting deeper
than `max_depth`.
"""

from __future__ import annotations

import json
import math
from typing import Any

# A tool call is a name and a handful of numbers (about 100 characters, nested 3 deep); these limits leave
# room for any legitimate call while bounding the work a pathological completion causes downstream.
MAX_JSON_CHARS = 16_384
MAX_JSON_DEPTH = 32


class _Rejected(ValueError):
    """Raised by the decoder hooks; caught inside this module."""


def _reject_constant(literal: str) -> Any:
    raise _Rejected(f"non-standard JSON literal {literal}")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Rejected(f"number {literal[:40]} is not finite")
    return value


def _object_without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _Rejected(f"duplicate key {duplicate[:40]!r}")
    return obj


def _has_lone_surrogate(text: str) -> bool:
    return not text.isascii() and any("\ud800" <= ch <= "\udfff" for ch in text)


def _structure_problem(value: Any, max_depth: int) -> str | None:
    """Why a decoded value is unacceptable (too deep, a lone surrogate), or None. Iterative: it may be deep."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str) and _has_lone_surrogate(item):
            return "JSON string holds a lone UTF-16 surrogate"
        if isinstance(item, dict | list) and depth > max_depth:
            return f"JSON nested deeper than {max_depth} levels"
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


def decode_json(
    text: str, max_chars: int = MAX_JSON_CHARS, max_depth: int = MAX_JSON_DEPTH
) -> tuple[Any, str | None]:
    """(value, None) when `text` is acceptable JSON, else (None, the reason)."""
    if len(text) > max_chars:
        return None, f"JSON text of {len(text)} characters exceeds the limit of {max_chars}"
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_object_without_duplicate_keys,
        )
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError as error:  # JSONDecodeError, _Rejected, and int() beyond its digit limit
        return None, f"invalid JSON: {error}"
    problem = _structure_problem(value, max_depth)
    return (None, problem) if problem else (value, None)

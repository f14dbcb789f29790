"""The errors a tool call can raise. Each one prints as a single line, '<tool>: <problem>', short enough to
log or to show the policy model, whatever the (possibly huge or hostile) input was."""

from __future__ import annotations

from pydantic import ValidationError

MAX_TOOL_CHARS = 80
MAX_PROBLEM_CHARS = 300
# Enough to say what is wrong without copying back a model's megabyte-long argument.
MAX_LOCATION_CHARS = 40
MAX_REPORTED_ERRORS = 3


def one_line(text: str, limit: int) -> str:
    """`text` with its whitespace runs collapsed to single spaces, cut to `limit` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def short_repr(value: object, limit: int = MAX_LOCATION_CHARS) -> str:
    """A one-line repr of `value` cut to `limit` characters; never fails on deep or huge values."""
    try:
        text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    except (RecursionError, ValueError):  # deeply nested containers; ints beyond Python's digit limit
        text = f"<{type(value).__name__}>"
    return one_line(text, limit)


class ToolError(ValueError):
    """Base of every error a tool call can raise. `str(error)` is one line naming the tool and the problem.

    The constructor's arguments are the exception's args, so errors survive pickling (Ray ships them
    between processes)."""

    def __init__(self, tool: str, problem: str) -> None:
        super().__init__(one_line(tool, MAX_TOOL_CHARS), one_line(problem, MAX_PROBLEM_CHARS))

    @property
    def tool(self) -> str:
        return self.args[0]

    @property
    def problem(self) -> str:
        return self.args[1]

    def __str__(self) -> str:
        return f"{self.tool}: {self.problem}"


class UnknownToolError(ToolError):
    """The name is not one of the six tools."""


class ToolArgumentError(ToolError):
    """The arguments are invalid: wrong type, non-finite or out-of-range value, unknown key, or a box that
    leaves nothing of the image."""


class ToolInputError(ToolError):
    """The image itself is unusable: wrong type or dtype, wrong shape, empty, too small or too large."""


def describe_validation_error(error: ValidationError, root: str = "arguments") -> str:
    """The first few problems of a pydantic error as 'field.index: message; ...', without echoing inputs;
    `root` names the whole object (a problem with no field)."""
    problems = [
        # Our own validators' messages come prefixed with "Value error, ", which tells the reader nothing.
        f"{_location(detail['loc'], root)}: {detail['msg'].removeprefix('Value error, ')}"
        for detail in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    shown = "; ".join(problems[:MAX_REPORTED_ERRORS])
    hidden = len(problems) - MAX_REPORTED_ERRORS
    return shown + (f" (and {hidden} more)" if hidden > 0 else "")


def _location(loc: tuple[int | str, ...], root: str) -> str:
    if not loc:
        return root
    return ".".join(str(part) if isinstance(part, int) else short_repr(part).strip("'\"") for part in loc)

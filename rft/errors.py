"""The project's error base class. Every error a user can cause (a bad config, a missing input, a run that
cannot start) is an `RftError` whose message is one line naming the bad input and the fix; the command-line
entry points catch `RftError` in one place, `run_command`, and print that line. Anything else is a bug and
keeps its traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


class RftError(ValueError):
    """A user-facing error, said in one line with the fix."""


class RunSetupError(RftError):
    """Something a run needs is missing or inconsistent, said in one line with the fix."""


class ResumeError(RftError):
    """`--resume` cannot be honoured, said in one line with the fix."""


def run_command(command: Callable[[], int], prog: str | None = None) -> int:
    """Run a command-line entry point: its exit code, or 2 with `[prog: ]error: <message>` on stderr (one
    line, no traceback) when it raises an `RftError`."""
    try:
        return command()
    except RftError as error:
        print(f"{prog}: error: {error}" if prog else f"error: {error}", file=sys.stderr)
        return 2

"""The project's error base class. Every error a user can cause (a bad config, a missing input, a run that
cannot start) is an `RftError` whose message is one line naming the bad input and the fix; the command-line
entry points catch `RftError` in one place, `run_command`, and print that line. Anything else is a bug and
keeps its traceback. A bad value goes into a message through `short_repr`, so the line stays short whatever
its size."""

from __future__ import annotations

import reprlib
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any


class RftError(ValueError):
    """A user-facing error, said in one line with the fix."""


class RunSetupError(RftError):
    """Something a run needs is missing or inconsistent, said in one line with the fix."""


class ResumeError(RftError):
    """`--resume` cannot be honoured, said in one line with the fix."""


# Bounded from the inside: only the first few items of each container, the first levels of nesting and
# the start of each string are ever turned into text, so a value of any size is shown in microseconds.
_BOUNDED = reprlib.Repr()
_BOUNDED.maxlevel, _BOUNDED.maxstring, _BOUNDED.maxother = 3, 80, 80
_BOUNDED.maxlist = _BOUNDED.maxtuple = _BOUNDED.maxdict = _BOUNDED.maxset = 6


def short_repr(value: Any, limit: int = 200) -> str:
    """`repr(value)` cut to about `limit` characters, built without ever making the full repr (a value read
    from a hostile file may expand to hundreds of megabytes): a long string keeps its start and says
    `…(N chars)`, a container its first items."""
    if isinstance(value, (str, bytes)):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}…({len(value)} chars)"
    text = _BOUNDED.repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


def short_text(text: str, limit: int = 200) -> str:
    """`text` itself (not its repr) cut to `limit` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}…({len(text)} chars)"


class Terminated(BaseException):
    """Raised in the main thread by a SIGTERM while `run_command` runs. A BaseException, like
    KeyboardInterrupt, so that no `except Exception` on the way swallows it."""


# 128 + the signal's number: the exit status a shell reports for a process killed by SIGTERM.
TERMINATED_EXIT_CODE = 128 + signal.SIGTERM


def run_command(command: Callable[[], int], prog: str | None = None) -> int:
    """Run a command-line entry point: its exit code, or 2 with `[prog: ]error: <message>` on stderr (one
    line, no traceback) when it raises an `RftError`.

    A SIGTERM (`kill`, a scheduler stopping a job) ends the command as Ctrl-C does, by an exception, so its
    `finally` blocks run: an in-process vLLM engine is shut down rather than left behind as idle processes
    holding its memory, a file being written is removed rather than left half-written. Exit code 143."""
    restore = _raise_on_sigterm()
    try:
        return command()
    except RftError as error:
        print(f"{prog}: error: {error}" if prog else f"error: {error}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"{prog}: stopped by SIGTERM" if prog else "stopped by SIGTERM", file=sys.stderr)
        return TERMINATED_EXIT_CODE
    finally:
        restore()


def _raise_on_sigterm() -> Callable[[], None]:
    """Install the SIGTERM handler that raises `Terminated`, once: it ignores further SIGTERMs (a launcher
    and a shell may both send one), so they cannot break into the clean-up the first one started. Returns
    what puts the previous handler back; nothing to do outside the main thread, where signals cannot be
    handled."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def terminate(_signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    # None: the previous handler was not installed from Python; the default is the closest to put back.
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

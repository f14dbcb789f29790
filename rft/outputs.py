"""Output folders: a command writes only into a folder it made itself, and replaces one atomically.

A command that writes a folder (`rft tiny-model --out`, `rft import --out`, the model and data caches, a
training stage's folder, ...) claims it first. A new or empty folder may be used; an existing one only when
its marker file, `.fas-rft.json`, names the same command (the project writes the marker whenever it makes an
output folder). Anything else is refused in one line naming the folder and the fix, and left exactly as it
was: `--out ..` must never empty the parent folder. Outputs written before markers existed are recognised by
a command-specific test (`legacy`), e.g. the tiny model's `tiny_model.json`.

A file is written the same way (`replaced_atomically`, `write_text_atomically`, `write_json`): into a
temporary file beside it with a name of its own (`<name>.<pid>.<random>.partial`), then renamed over it, so
a reader sees the old file or the new one whole, and two processes writing the same file (every rank of a
launch) never rename each other's file away.

A folder rewritten as a whole is built in a new staging folder beside it and renamed into place, so an
interrupted command leaves the previous output, or nothing, never half of one. A staging folder always has a
fresh name (never an existing folder that might be someone else's) and is removed if the command fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from rft.errors import RftError

MARKER = ".fas-rft.json"
PARTIAL_SUFFIX = "partial"  # a file being written: `replaced_atomically` renames it into place when whole

T = TypeVar("T")
Legacy = Callable[[Path], bool]


class OutputDirError(RftError):
    """An output folder a command may not write (not made by it, not a folder), said in one line with the fix.
    The message starts with the folder; a command line prefixes its option (`--out DIR: ...`)."""


def made_by(folder: Path) -> str | None:
    """The command named by `folder`'s marker; None when there is no readable marker."""
    try:
        with open(Path(folder) / MARKER, "rb") as handle:
            content = json.loads(handle.read(4096))
    except (OSError, ValueError):
        return None
    command = content.get("command") if isinstance(content, dict) else None
    return command if isinstance(command, str) else None


@contextmanager
def replaced_atomically(
    path: Path, mode: str = "w", *, durable: bool = False, **open_args: Any
) -> Iterator[IO[Any]]:
    """An open file (`mode` "w", UTF-8 unless told otherwise, or "wb") whose content replaces `path` whole
    when the block ends; its folder is created. If the block raises, the partial file is removed and `path`
    is left as it was. `durable` also syncs it to disk before the rename (a file that must survive a power
    loss, such as a trained expert; not for the per-step records and images of a training run)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"replaced_atomically writes a whole file: mode 'w' or 'wb', got {mode!r}")
    if mode == "w":
        open_args.setdefault("encoding", "utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid and a random part: ranks on several nodes may share a folder and a pid (containers).
    partial = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.{PARTIAL_SUFFIX}")
    try:
        with open(partial, mode, **open_args) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str, *, durable: bool = False) -> Path:
    """`text` (UTF-8) as the whole content of `path`, replaced atomically."""
    with replaced_atomically(path, durable=durable) as handle:
        handle.write(text)
    return Path(path)


def write_json(path: Path, value: Any, *, durable: bool = False) -> Path:
    """`value` as indented JSON at `path`, replaced atomically."""
    return write_text_atomically(path, json.dumps(value, indent=2) + "\n", durable=durable)


def write_marker(folder: Path, command: str) -> None:
    """Mark `folder` as made by `command` (replaced atomically: a reader never sees half a marker)."""
    created = datetime.now(UTC).isoformat(timespec="seconds")
    write_text_atomically(Path(folder) / MARKER, json.dumps({"command": command, "created": created}) + "\n")


def _problem(folder: Path, command: str, legacy: Legacy | None) -> str | None:
    """Why `command` may not write `folder`, or None when it may."""
    if not os.path.lexists(folder):
        return None
    if not folder.is_dir():
        return "exists and is not a folder; choose a new folder"
    owner = made_by(folder)
    if owner == command or (owner is None and legacy is not None and legacy(folder)):
        return None
    try:
        if next(folder.iterdir(), None) is None:
            return None  # empty: nothing in it to lose
    except OSError as error:
        return f"cannot be read ({error.strerror}); choose a new folder"
    if owner is not None:
        return f"folder was made by {owner}, not {command}; choose a new folder"
    return f"folder exists and was not made by {command}; choose a new folder"


def check_output_dir(folder: Path, command: str, *, legacy: Legacy | None = None) -> None:
    """Raise `OutputDirError` unless `command` may write `folder` (new, empty, or marked as its own).
    Cheap and read-only: a command calls it before any long work."""
    problem = _problem(Path(folder), command, legacy)
    if problem is not None:
        raise OutputDirError(f"{folder}: {problem}")


def claim_output_dir(folder: Path, command: str, *, legacy: Legacy | None = None) -> Path:
    """`folder`, created and marked as `command`'s, for a command that writes files into it one by one;
    refused (`OutputDirError`, nothing touched) when it belongs to someone else."""
    check_output_dir(folder, command, legacy=legacy)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if made_by(folder) != command:
        write_marker(folder, command)
    return folder


def replace_output_dir(
    folder: Path, command: str, write: Callable[[Path], T], *, legacy: Legacy | None = None
) -> T:
    """Build `folder` anew: `write(staging)` fills a new, empty staging folder beside it, which is marked as
    `command`'s and renamed into place (the previous output, checked to be `command`'s, is then deleted).
    Returns what `write` returned. Refused (`OutputDirError`, nothing touched) before `write` runs when the
    folder belongs to someone else; if `write` fails, the staging folder goes and `folder` stays as it was."""
    check_output_dir(folder, command, legacy=legacy)
    target = Path(os.path.abspath(folder))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _fresh_sibling(target, "staging")
    staging.mkdir()
    try:
        result = write(staging)
        write_marker(staging, command)
        check_output_dir(folder, command, legacy=legacy)  # again: it may have changed while `write` ran
        _swap_in(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return result


def _fresh_sibling(target: Path, role: str) -> Path:
    return target.with_name(f".{target.name}.{role}-{secrets.token_hex(4)}")


def _swap_in(staging: Path, target: Path) -> None:
    """Rename `staging` to `target`; an existing `target` is moved aside first and deleted after."""
    if not os.path.lexists(target):
        staging.rename(target)
        return
    aside = _fresh_sibling(target, "old")
    target.rename(aside)
    try:
        staging.rename(target)
    except OSError:
        aside.rename(target)
        raise
    if aside.is_symlink():  # a link to the old output: the link goes, what it pointed to stays
        aside.unlink()
    else:
        shutil.rmtree(aside, ignore_errors=True)

"""The resumable store of an annotation run.

    OUT/.fas-rft.json     marks OUT as an annotation run's folder: no other folder is written (rft.outputs)
    OUT/run.json          what the run annotates and how (a rerun with other content settings is refused)
    OUT/journal.jsonl     one JSON line per finished (task, image): kept with its conversation, or dropped
                          with its reasons; appended, flushed and fsynced line by line
    OUT/<kind>/           the final datasets (rft.data.conversations), rebuilt atomically from the journal
    OUT/summary.json      kept / re-annotated / dropped by reason, per task

A rerun reads the journal and skips every (task, image) it holds, so an interrupted run continues where it
stopped and a finished one does nothing but rebuild the datasets. A line cut short by a crash is ignored
(and overwritten by the next append).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rft.errors import RftError
from rft.outputs import claim_output_dir, write_text_atomically

ANNOTATE_COMMAND = "rft annotate"  # named in the marker of the folders it writes (rft.outputs)
JOURNAL = "journal.jsonl"
MANIFEST = "run.json"
# Run settings that change what an annotation contains; the rest (concurrency, rate, limit) may change
# between a run and its continuation.
IDENTITY_KEYS = ("data", "fingerprint", "split", "domains", "source", "annotation", "experts")


class StoreError(RftError):
    """The output folder cannot be used as asked (another run's data, unreadable journal)."""


def is_earlier_run(folder: Path) -> bool:
    """An annotation run started before output folders were marked (rft.outputs): it may be resumed."""
    return (folder / MANIFEST).is_file()


def check_manifest(out_dir: Path, manifest: dict[str, Any], restart: bool) -> None:
    """Create OUT/run.json, or check that the existing one describes the same run (resume). OUT must be new
    or this command's (rft.outputs.claim_output_dir); any other folder is refused untouched, even with
    `restart`."""
    claim_output_dir(out_dir, ANNOTATE_COMMAND, legacy=is_earlier_run)
    path = out_dir / MANIFEST
    if restart:
        for name in (MANIFEST, JOURNAL):
            (out_dir / name).unlink(missing_ok=True)
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except ValueError:
            raise StoreError(f"{path} is not valid JSON; pass --restart to start over") from None
        changed = [key for key in IDENTITY_KEYS if previous.get(key) != manifest.get(key)]
        if changed:
            key = changed[0]
            raise StoreError(
                f"{out_dir} holds a run with another {key} ({previous.get(key)!r} -> {manifest.get(key)!r}); "
                "pass --restart to discard it, or choose another --out"
            )
        return
    write_text_atomically(path, json.dumps(manifest, indent=2) + "\n")


class Journal:
    """Append-only JSONL of finished (task, sample) records."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._repair_tail()
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def _repair_tail(self) -> None:
        """Cut a last line left without its newline by a crash, so the next record starts on its own line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "rb+") as handle:
            data = handle.read()
            if data.endswith(b"\n"):
                return
            handle.truncate(data.rfind(b"\n") + 1)

    def append(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def read_journal(path: Path) -> Iterator[dict[str, Any]]:
    """The complete records of a journal, oldest first; a torn or corrupt line is skipped."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                return  # torn by a crash: not a finished record
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "task" in record and "sample_id" in record:
                yield record


def latest_records(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest record of each (task, sample_id) (a retried drop is superseded by its retry)."""
    return {(record["task"], record["sample_id"]): record for record in read_journal(path)}

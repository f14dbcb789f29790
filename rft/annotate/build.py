"""From the journal to the final datasets and the closing summary.

Tool pictures are not kept in the journal: the tools are pure functions, so each kept trajectory's pictures
are recomputed from the dataset image and the recorded calls, and compared with the digests recorded at
annotation time (a changed tool implementation drops the row with `tool_output_changed` instead of
silently pairing text with a different picture). Every trajectory is parsed once more as the trainer will.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
from PIL import Image
from tqdm import tqdm

from rft.annotate.annotation import TOOL_TRAJECTORY, picture_digest
from rft.annotate.samples import load_sample
from rft.annotate.store import ANNOTATE_COMMAND
from rft.annotate.verify import Reason, check_episode
from rft.data.conversations import Conversation, conversations_to_dataset
from rft.data.schema import save_dataset
from rft.tools import run_tool


def _assistant_texts(messages: list[dict[str, Any]]) -> list[str]:
    return [message["content"] for message in messages if message.get("role") == "assistant"]


def _conversation(
    record: dict[str, Any], sample, zoom_output_size: int, max_tool_calls: int
) -> Conversation | Reason:
    context = sample.context
    images = [sample.image]
    if record["task"] == TOOL_TRAJECTORY:
        if check_episode(_assistant_texts(record["messages"]), context.label, max_tool_calls, 0) is not None:
            return Reason.EPISODE_FORMAT
        for call, digest in zip(record["tool_calls"], record["tool_picture_sha256"], strict=True):
            picture = run_tool(call["name"], sample.image, call["arguments"], output_size=zoom_output_size)
            if picture_digest(picture) != digest:
                return Reason.TOOL_OUTPUT_CHANGED
            images.append(picture)
    return Conversation(
        sample_id=context.sample_id,
        label=context.label,
        spoof_type=context.spoof_type,
        domain=context.domain,
        kind=record["task"],
        source=record["source"],
        messages=record["messages"],
        images=[Image.fromarray(image) for image in images],
    )


def build_datasets(
    out_dir: Path,
    dataset,
    records: dict[tuple[str, str], dict[str, Any]],
    tasks: tuple[str, ...],
    *,
    zoom_output_size: int,
    max_tool_calls: int,
    progress: bool = True,
) -> dict[tuple[str, str], str]:
    """Write OUT/<task>/ for each task (rows in dataset order, saved atomically); return the (task, sample)
    pairs rejected while building, with their reason."""
    position = {sample_id: index for index, sample_id in enumerate(dataset["id"])}
    rejected: dict[tuple[str, str], str] = {}
    for task in tasks:
        kept = sorted(
            (record for (kind, _), record in records.items() if kind == task and record["status"] == "kept"),
            key=lambda record: position.get(record["sample_id"], len(position)),
        )
        conversations = []
        for record in tqdm(kept, desc=f"build {task}", unit="row", disable=not progress):
            index = position.get(record["sample_id"])
            if index is None:
                rejected[(task, record["sample_id"])] = "sample_not_in_dataset"
                continue
            built = _conversation(record, load_sample(dataset, index), zoom_output_size, max_tool_calls)
            if isinstance(built, Conversation):
                conversations.append(built)
            else:
                rejected[(task, record["sample_id"])] = str(built)
        with _dataset_progress(progress):
            save_dataset(
                conversations_to_dataset(conversations),
                Path(out_dir) / task,
                command=ANNOTATE_COMMAND,
                legacy=_in_the_runs_folder,
            )
    return rejected


def _in_the_runs_folder(task_dir: Path) -> bool:
    """A task folder of OUT, which the run claimed (store.check_manifest), so an earlier run's own even
    without a marker of its own (written before folders were marked)."""
    return True


@contextlib.contextmanager
def _dataset_progress(enabled: bool) -> Iterator[None]:
    """`datasets` draws its own "Saving the dataset" bars; silence them when progress is off."""
    was_enabled = datasets.is_progress_bar_enabled()
    if not enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled and not enabled:
            datasets.enable_progress_bars()


def summarise(
    records: dict[tuple[str, str], dict[str, Any]],
    tasks: tuple[str, ...],
    sample_ids: list[str],
    rejected: dict[tuple[str, str], str],
) -> dict[str, Any]:
    """Kept (first try / after re-annotation), dropped by reason and still pending, per task."""
    per_task = {}
    dropped_list = []
    for task in tasks:
        mine = [records[(task, sample_id)] for sample_id in sample_ids if (task, sample_id) in records]
        kept = [r for r in mine if r["status"] == "kept" and (task, r["sample_id"]) not in rejected]
        dropped_reasons = Counter(
            rejected.get((task, r["sample_id"])) or r["reason"]
            for r in mine
            if r["status"] != "kept" or (task, r["sample_id"]) in rejected
        )
        failures = Counter(reason for r in mine for reason in r.get("failures", []))
        per_task[task] = {
            "kept": len(kept),
            "kept_first_attempt": sum(1 for r in kept if r["attempts"] == 1),
            "kept_after_reannotation": sum(1 for r in kept if r["attempts"] > 1),
            "dropped": sum(dropped_reasons.values()),
            "dropped_by_reason": dict(sorted(dropped_reasons.items())),
            "failed_attempts_by_reason": dict(sorted(failures.items())),
            "pending": len(sample_ids) - len(mine),
            "sources": dict(Counter(r["source"] for r in kept)),
        }
        for r in mine:
            if r["status"] != "kept" or (task, r["sample_id"]) in rejected:
                dropped_list.append(
                    {
                        "task": task,
                        "sample_id": r["sample_id"],
                        "reason": rejected.get((task, r["sample_id"])) or r["reason"],
                        "failures": r.get("failures", []),
                        "detail": r.get("detail", ""),
                    }
                )
    return {"images": len(sample_ids), "tasks": per_task, "dropped": dropped_list}


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"annotation summary ({summary['images']} images)"]
    for task, counts in summary["tasks"].items():
        reasons = ", ".join(f"{reason} {n}" for reason, n in counts["dropped_by_reason"].items()) or "-"
        lines.append(
            f"  {task:<20} kept {counts['kept']} (re-annotated {counts['kept_after_reannotation']}), "
            f"dropped {counts['dropped']} [{reasons}], pending {counts['pending']}"
        )
    return "\n".join(lines)

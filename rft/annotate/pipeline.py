"""The annotation run: select images, annotate the missing (task, image) pairs concurrently, journal each
result as it finishes, then build the datasets and the summary from the whole journal.

Concurrency: `workers` images are in progress at once; each image's tasks run one after the other (the
trajectory needs the image's stage-1 answer first), and the HTTP teacher itself bounds the requests in
flight and their rate. Tool runs and expert inferences are a few milliseconds each and run on the event
loop's thread; the teacher's latency dominates.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm import tqdm

from rft.annotate.annotation import (
    KNOWLEDGE_TRANSFER,
    TASKS,
    TOOL_TRAJECTORY,
    AnnotationSettings,
    Attempt,
    Outcome,
    annotate_task,
)
from rft.annotate.build import build_datasets, summarise
from rft.annotate.samples import Sample, load_sample
from rft.annotate.store import Journal, check_manifest, latest_records
from rft.annotate.teacher import Teacher, png_data_url
from rft.annotate.verify import Reason
from rft.experts.bank import ExpertBank
from rft.experts.data import load_benchmark
from rft.experts.inputs import tool_picture
from rft.outputs import write_json


class RunSettings(BaseModel):
    """What to annotate and where the results go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: Path
    out: Path
    split: str | None = Field("train", description="annotate this split only (None: every split)")
    domains: tuple[str, ...] | None = None
    limit: int | None = Field(None, ge=1, description="at most this many images (in dataset order)")
    tasks: tuple[str, ...] = TASKS
    workers: int = Field(4, ge=1, le=1024, description="images in progress at once")
    restart: bool = False
    retry_dropped: bool = False
    annotation: AnnotationSettings = AnnotationSettings()

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [task for task in tasks if task not in TASKS]
        if unknown or not tasks:
            raise ValueError(f"tasks must be among {', '.join(TASKS)}; got {', '.join(tasks) or 'none'}")
        chosen = set(tasks)
        if TOOL_TRAJECTORY in chosen:  # its first round is the stage-1 answer (paper 003, sec. 3.2.2)
            chosen.add(KNOWLEDGE_TRANSFER)
        return tuple(task for task in TASKS if task in chosen)


@dataclass
class RunResult:
    summary: dict[str, Any]
    requests: int
    seconds: float
    new_records: int
    datasets: dict[str, Path] = field(default_factory=dict)


def select_rows(dataset, settings: RunSettings) -> list[int]:
    """Row indices to annotate: the split and domains asked for, in dataset order, up to `limit`."""
    splits, domains = dataset["split"], dataset["domain"]
    rows = [
        index
        for index in range(len(dataset))
        if (settings.split is None or splits[index] == settings.split)
        and (not settings.domains or domains[index] in settings.domains)
    ]
    if not rows:
        raise ValueError(
            f"no images to annotate in {settings.data} (split {settings.split!r}, domains {settings.domains}); "
            f"splits there: {', '.join(sorted(set(splits)))}"
        )
    return rows[: settings.limit] if settings.limit else rows


def expert_evidence(sample: Sample, experts: ExpertBank | None) -> dict[str, float]:
    """p_k of each expert's tool at its default arguments: what the templated writer knows of the image."""
    if experts is None:
        return {}
    return {
        tool: expert.spoof_probability(tool_picture(tool, sample.image))
        for tool, expert in experts.experts.items()
    }


class Runner:
    """One run over the selected images (see the module docstring)."""

    def __init__(
        self, settings: RunSettings, teacher: Teacher, experts: ExpertBank | None, progress: bool = True
    ) -> None:
        self.settings = settings
        self.teacher = teacher
        self.experts = experts
        self.progress = progress
        self.new_records = 0
        self.kept_dropped = [0, 0]

    def manifest(self, dataset) -> dict[str, Any]:
        experts = None
        if self.experts is not None:
            experts = {tool: expert.digest[:16] for tool, expert in self.experts.experts.items()}
        return {
            "data": str(Path(self.settings.data).resolve()),
            "fingerprint": dataset._fingerprint,
            "split": self.settings.split,
            "domains": list(self.settings.domains) if self.settings.domains else None,
            "source": self.teacher.source,
            "annotation": self.settings.annotation.model_dump(),
            "experts": experts,
        }

    def pending(self, records: dict, sample_ids: list[str]) -> dict[str, list[str]]:
        """Tasks still to run per image (a dropped record counts as done unless --retry-dropped)."""
        todo = {}
        for sample_id in sample_ids:
            tasks = []
            for task in self.settings.tasks:
                record = records.get((task, sample_id))
                if record is None or (self.settings.retry_dropped and record["status"] != "kept"):
                    tasks.append(task)
            if tasks:
                todo[sample_id] = tasks
        return todo

    async def annotate_image(
        self, sample: Sample, tasks: list[str], records: dict, journal: Journal, bar
    ) -> None:
        if self.teacher.source == "templated":
            sample.context.evidence = expert_evidence(sample, self.experts)
        image_url = png_data_url(sample.image)
        for task in tasks:
            fast_answer = None
            if task == TOOL_TRAJECTORY:
                stage_one = records.get((KNOWLEDGE_TRANSFER, sample.context.sample_id))
                if stage_one is not None and stage_one["status"] == "kept":
                    fast_answer = stage_one["messages"][-1]["content"]
            outcome = await annotate_task(
                task, sample, image_url, self.teacher, self.experts, self.settings.annotation, fast_answer
            )
            self.keep_record(outcome, records, journal, bar)

    def keep_record(self, outcome: Outcome, records: dict, journal: Journal, bar) -> None:
        """Journal a finished (task, image) at once (fsynced), so a crash never loses it."""
        record = outcome.record()
        journal.append(record)
        records[(outcome.task, outcome.sample_id)] = record
        self.new_records += 1
        self.kept_dropped[0 if outcome.kept else 1] += 1
        bar.update()
        bar.set_postfix(kept=self.kept_dropped[0], dropped=self.kept_dropped[1])

    def drop_unreadable(
        self, sample_id: str, tasks: list[str], detail: str, records: dict, journal, bar
    ) -> None:
        """Journal every task of an image that cannot be read as dropped, so the run goes on without it."""
        for task in tasks:
            attempt = Attempt().fail(Reason.UNREADABLE_IMAGE, detail)
            outcome = Outcome(task, sample_id, self.teacher.source, 0, [str(attempt.reason)], attempt)
            self.keep_record(outcome, records, journal, bar)

    async def run_pending(
        self, dataset, rows: dict[str, int], todo: dict[str, list[str]], records: dict, journal
    ) -> None:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for sample_id in todo:
            queue.put_nowait(sample_id)
        total = sum(len(tasks) for tasks in todo.values())
        with tqdm(total=total, desc="annotate", unit="task", disable=not self.progress) as bar:

            async def worker() -> None:
                while not queue.empty():
                    sample_id = queue.get_nowait()
                    try:
                        sample = load_sample(dataset, rows[sample_id], self.settings.data)
                    except ValueError as error:  # a corrupt image: drop its tasks, go on with the others
                        self.drop_unreadable(sample_id, todo[sample_id], str(error), records, journal, bar)
                        continue
                    await self.annotate_image(sample, todo[sample_id], records, journal, bar)

            workers = [
                asyncio.create_task(worker()) for _ in range(min(self.settings.workers, len(todo)) or 1)
            ]
            try:
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    async def run(self) -> RunResult:
        started = time.perf_counter()
        out = Path(self.settings.out)
        journal_path = out / "journal.jsonl"
        try:
            dataset = load_benchmark(self.settings.data)
            rows = select_rows(dataset, self.settings)
            ids = dataset["id"]
            sample_ids = [ids[index] for index in rows]
            check_manifest(out, self.manifest(dataset), self.settings.restart)
            records = latest_records(journal_path)
            journal = Journal(journal_path)
            try:
                todo = self.pending(records, sample_ids)
                await self.run_pending(
                    dataset, dict(zip(sample_ids, rows, strict=True)), todo, records, journal
                )
            finally:
                journal.close()
        finally:
            await self.teacher.aclose()
        records = latest_records(journal_path)
        selected = set(sample_ids)
        rejected = build_datasets(
            out,
            dataset,
            {key: value for key, value in records.items() if key[1] in selected},
            self.settings.tasks,
            zoom_output_size=self.settings.annotation.zoom_output_size,
            max_tool_calls=self.settings.annotation.max_tool_calls,
            progress=self.progress,
        )
        summary = summarise(records, self.settings.tasks, sample_ids, rejected)
        seconds = time.perf_counter() - started
        summary["run"] = {
            "source": self.teacher.source,
            "requests": getattr(self.teacher, "requests", None),
            "new_records": self.new_records,
            "seconds": round(seconds, 1),
        }
        write_json(out / "summary.json", summary, durable=True)
        return RunResult(
            summary=summary,
            requests=getattr(self.teacher, "requests", 0),
            seconds=seconds,
            new_records=self.new_records,
            datasets={task: out / task for task in self.settings.tasks},
        )

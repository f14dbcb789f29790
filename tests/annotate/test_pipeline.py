"""Whole runs: the templated writer end to end (what the stage-1/stage-2 SFT and the caption baseline read),
resuming, and a scripted OpenAI-compatible teacher that misbehaves in every way the issue names."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import datasets
import httpx
import numpy as np
import pytest

from rft.annotate import cli
from rft.annotate.annotation import AnnotationSettings
from rft.annotate.pipeline import Runner, RunSettings
from rft.annotate.store import StoreError, read_journal
from rft.annotate.teacher import HttpTeacher, TeacherFatal, TeacherSettings
from rft.annotate.templated import TemplatedTeacher
from rft.annotate.verify import caption_stages
from rft.data.conversations import conversation_from_row
from rft.data.schema import load_dataset_dir
from rft.experts.bank import ExpertBank
from rft.parsing.tar_fas import parse_episode
from rft.prompts.episodes import count_images, first_turn_messages, reexamine_message, tool_result_message
from rft.tools import run_tool

from .conftest import ScriptedTeacher, mock_transport

TASKS = ("knowledge_transfer", "tool_trajectory", "caption_vanilla", "caption_reasoning")


def run(dataset, out, teacher, experts=None, **overrides):
    settings = RunSettings(data=dataset, out=out, **{"split": None, **overrides})
    bank = ExpertBank.load(experts) if experts else None
    return asyncio.run(Runner(settings, teacher, bank, progress=False).run())


def rows(out, task):
    return [conversation_from_row(row) for row in load_dataset_dir(out / task)]


@pytest.fixture(scope="module")
def templated_run(tiny_benchmark, experts_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("templated") / "annotated"
    return out, run(tiny_benchmark, out, TemplatedTeacher(), experts_dir)


def test_templated_run_keeps_every_task_of_every_image(templated_run):
    _, result = templated_run
    for task in TASKS:
        counts = result.summary["tasks"][task]
        assert (counts["kept"], counts["dropped"], counts["pending"]) == (24, 0, 0), (task, counts)
        assert counts["sources"] == {"templated": 24}


def test_stage_two_rows_are_the_training_conversation(templated_run, tiny_benchmark):
    out, _ = templated_run
    source = {row["id"]: row for row in load_dataset_dir(tiny_benchmark)}
    fast_answers = {c.sample_id: c.messages[-1]["content"] for c in rows(out, "knowledge_transfer")}
    trajectories = rows(out, "tool_trajectory")
    assert len(trajectories) == 24
    for conv in trajectories:
        messages = conv.messages
        assert conv.kind == "tool_trajectory" and conv.source == "templated"
        assert messages[:2] == first_turn_messages()
        assert messages[2] == {
            "role": "assistant",
            "content": fast_answers[conv.sample_id],
        }  # D2's prefix = D1
        assert messages[3] == reexamine_message()
        tool_turns = [m for m in messages if m["role"] == "tool"]
        assert all(m == tool_result_message() for m in tool_turns)  # no guidance, no hint at training time
        episode = parse_episode([m["content"] for m in messages if m["role"] == "assistant"])
        assert not episode.errors and episode.final_answer == conv.label
        assert len(episode.tool_calls) == len(tool_turns) >= 1
        assert count_images(messages) == len(conv.images) == 1 + len(tool_turns)
        original = source[conv.sample_id]
        assert conv.label == ("spoof" if original["label"] == 1 else "live")
        image = np.asarray(original["image"].convert("RGB"))
        assert np.array_equal(np.asarray(conv.images[0]), image)
        for call, picture in zip(episode.tool_calls, conv.images[1:], strict=True):
            arguments = call.arguments.model_dump(exclude_defaults=True)
            assert np.array_equal(np.asarray(picture), run_tool(call.name, image, arguments))
        text = json.dumps(messages[1:])  # the system prompt calls the model "a face forensics expert"
        assert "Hint" not in text and "expert" not in text.lower() and "%" not in text


def test_stage_one_and_caption_rows(templated_run):
    out, _ = templated_run
    for conv in rows(out, "knowledge_transfer"):
        assert conv.messages[:2] == first_turn_messages() and len(conv.messages) == 3
        assert conv.messages[2]["content"].startswith(
            "<Spoof><reason>" if conv.label == "spoof" else "<Real><reason>"
        )
    for kind in ("caption_vanilla", "caption_reasoning"):
        captions = rows(out, kind)
        assert len(captions) == 24 and all(len(c.images) == 1 for c in captions)
        for conv in captions:
            assert [m["role"] for m in conv.messages] == ["user", "assistant"]
            assert "live" in conv.messages[0]["content"][1]["text"].lower() or kind == "caption_reasoning"
    assert all(caption_stages(c.messages[1]["content"]) for c in rows(out, "caption_reasoning"))


class CrashingTeacher(TemplatedTeacher):
    """Dies after `budget` requests, as a run killed half-way would."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget

    async def complete(self, request):
        if self.requests >= self.budget:
            raise RuntimeError("killed")
        return await super().complete(request)


def test_a_rerun_continues_where_the_last_one_stopped(tiny_benchmark, tmp_path):
    out = tmp_path / "resumed"
    with pytest.raises(RuntimeError, match="killed"):
        run(tiny_benchmark, out, CrashingTeacher(budget=15), split="train")
    done = list(read_journal(out / "journal.jsonl"))
    assert 0 < len(done) < 4 * 14
    with open(out / "journal.jsonl", "a") as journal:
        journal.write('{"task": "knowledge_transfer", "sample_id": "torn')  # a record cut short by the kill
    second = TemplatedTeacher()
    result = run(tiny_benchmark, out, second, split="train")
    records = list(read_journal(out / "journal.jsonl"))
    keys = [(r["task"], r["sample_id"]) for r in records]
    assert len(keys) == len(set(keys)) == 4 * result.summary["images"]  # each (task, image) exactly once
    assert result.new_records == len(keys) - len(done)
    assert all(counts["kept"] == result.summary["images"] for counts in result.summary["tasks"].values())
    finished = TemplatedTeacher()
    again = run(tiny_benchmark, out, finished, split="train")
    assert (again.new_records, finished.requests) == (0, 0)
    assert len(rows(out, "tool_trajectory")) == result.summary["images"]


def test_an_output_folder_of_another_run_is_refused(tiny_benchmark, tmp_path):
    out = tmp_path / "a"
    run(tiny_benchmark, out, TemplatedTeacher(), split="dev", tasks=("knowledge_transfer",))
    with pytest.raises(StoreError, match="holds a run with another split"):
        run(tiny_benchmark, out, TemplatedTeacher(), split="test", tasks=("knowledge_transfer",))
    result = run(
        tiny_benchmark, out, TemplatedTeacher(), split="test", tasks=("knowledge_transfer",), restart=True
    )
    assert result.summary["tasks"]["knowledge_transfer"]["kept"] == result.summary["images"]


# ------------------------------------------------------------------------- a misbehaving teacher


def http_teacher(brain: ScriptedTeacher, base_url="http://teacher.test/v1", transport=None, **overrides):
    settings = TeacherSettings(
        base_url=base_url,
        model="scripted",
        api_key_env=None,
        requests_per_minute=None,
        http_retries=0,
        **overrides,
    )
    return HttpTeacher(settings, transport=transport if transport is not None else mock_transport(brain))


def records_by_task(out) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for record in read_journal(out / "journal.jsonl"):
        grouped.setdefault(record["task"], []).append(record)
    return grouped


@pytest.mark.parametrize(
    "script, task, status, failures",
    [
        ({"knowledge_transfer": ["garbage"]}, "knowledge_transfer", "kept", ["unparseable_turn"]),
        (
            {"knowledge_transfer": ["garbage", "garbage"]},
            "knowledge_transfer",
            "dropped",
            ["unparseable_turn"] * 2,
        ),
        (
            {"knowledge_transfer": ["sleep", "sleep"]},
            "knowledge_transfer",
            "dropped",
            ["teacher_timeout"] * 2,
        ),
        (
            {"knowledge_transfer": ["not_json", "http500"]},
            "knowledge_transfer",
            "dropped",
            ["teacher_bad_response", "teacher_http_error"],
        ),
        ({"tool_trajectory": ["leak_hint", "leak_hint"]}, "tool_trajectory", "dropped", ["hint_leak"] * 2),
        ({"tool_trajectory": ["leak_expert", "good"]}, "tool_trajectory", "kept", ["expert_leak"]),
        ({"tool_trajectory": ["wrong", "wrong"]}, "tool_trajectory", "dropped", ["wrong_answer"] * 2),
        (
            {"tool_trajectory": ["invalid_tool", "invalid_tool"]},
            "tool_trajectory",
            "dropped",
            ["invalid_tool_call"] * 2,
        ),
        (
            {"tool_trajectory": ["never_answer", "never_answer"]},
            "tool_trajectory",
            "dropped",
            ["too_many_tool_calls"] * 2,
        ),
        (
            {"caption_reasoning": ["no_stages", "no_stages"]},
            "caption_reasoning",
            "dropped",
            ["caption_missing_stages"] * 2,
        ),
        ({"caption_vanilla": ["wrong"]}, "caption_vanilla", "kept", ["caption_wrong_judgment"]),
    ],
)
def test_bad_teacher_output_is_reannotated_once_then_dropped_with_its_reason(
    tiny_benchmark, experts_dir, tmp_path, script, task, status, failures
):
    brain = ScriptedTeacher(script=script, delay_s=5.0)
    tasks = (task, "tool_trajectory") if task == "knowledge_transfer" else (task,)
    teacher = http_teacher(brain)
    result = run(
        tiny_benchmark, tmp_path / "o", teacher, experts_dir, split="train", limit=2, workers=2, tasks=tasks
    )
    grouped = records_by_task(tmp_path / "o")
    assert len(grouped[task]) == 2
    for record in grouped[task]:
        assert record["status"] == status and record["failures"] == failures
        assert record["attempts"] == (len(failures) + (status == "kept"))
        assert record["teacher_turns"] or status == "dropped"
    counts = result.summary["tasks"][task]
    if status == "dropped":
        assert counts["dropped_by_reason"] == {failures[-1]: 2} and counts["kept"] == 0
    else:
        assert counts["kept_after_reannotation"] == 2
    if task == "tool_trajectory":  # its stage-1 prefix was annotated first, by a well-behaved teacher
        assert result.summary["tasks"]["knowledge_transfer"]["kept"] == 2
    if task == "knowledge_transfer" and status == "dropped":  # no stage-1 answer, no stage-2 prefix
        assert result.summary["tasks"]["tool_trajectory"]["dropped_by_reason"] == {"fast_answer_missing": 2}


def test_an_unusable_teacher_stops_the_run_and_the_cli_says_why_in_one_line(tiny_benchmark, tmp_path, capsys):
    brain = ScriptedTeacher(script={"knowledge_transfer": ["http401"]})
    with pytest.raises(TeacherFatal, match="HTTP 401"):
        run(tiny_benchmark, tmp_path / "o", http_teacher(brain), split="train", limit=1)
    code = cli.main(
        [
            "--data",
            str(tiny_benchmark),
            "--out",
            str(tmp_path / "c"),
            "--teacher-url",
            "http://127.0.0.1:9/v1",
            "--teacher-model",
            "m",
            "--limit",
            "1",
            "--quiet",
            "--timeout",
            "2",
            "--http-retries",
            "0",
            "--api-key-env",
            "",
        ]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.startswith("rft annotate: error: teacher unreachable at http://127.0.0.1:9/v1")
    assert "\n" not in error


def test_over_http_the_teacher_sees_hint_and_guidance_and_the_data_keeps_neither(
    served_teacher, tiny_benchmark, experts_dir, tmp_path
):
    brain, base_url = served_teacher
    transport = httpx.AsyncHTTPTransport()
    result = run(
        tiny_benchmark,
        tmp_path / "o",
        http_teacher(brain, base_url, transport),
        experts_dir,
        split="train",
        limit=2,
    )
    assert all(result.summary["tasks"][task]["kept"] == 2 for task in TASKS), result.summary
    trajectory_requests = [r for r in brain.requests if "## Available Tools" in r["messages"][0]["content"]]
    second_turns = [r for r in trajectory_requests if len(r["messages"]) == 4]
    assert len(second_turns) == 2
    tool_turn = second_turns[0]["messages"][3]
    assert tool_turn["role"] == "user" and tool_turn["content"][0]["image_url"]["url"].startswith(
        "data:image/png;base64,"
    )
    assert tool_turn["content"][1]["text"].startswith("This is the result of FFTTool. The expert predicts ")
    assert tool_turn["content"][1]["text"].endswith("% there's spoof trace.")
    first_user = trajectory_requests[0]["messages"][1]["content"][1]["text"]
    assert first_user.startswith("This is the image you need to investigate. Hint: ")
    stored = json.dumps([c.messages for c in rows(tmp_path / "o", "tool_trajectory")])
    assert "Hint" not in stored and "expert predicts" not in stored


def test_over_http_a_teacher_that_times_out_is_dropped_and_nothing_crashes(
    served_teacher, tiny_benchmark, tmp_path
):
    brain, base_url = served_teacher
    brain.script, brain.delay_s = {"caption_vanilla": ["sleep", "sleep"]}, 1.0
    teacher = http_teacher(brain, base_url, httpx.AsyncHTTPTransport(), timeout_s=0.3)
    result = run(tiny_benchmark, tmp_path / "o", teacher, split="train", limit=1, tasks=("caption_vanilla",))
    assert result.summary["tasks"]["caption_vanilla"]["dropped_by_reason"] == {"teacher_timeout": 1}
    assert result.summary["dropped"][0]["failures"] == ["teacher_timeout", "teacher_timeout"]


def test_cli_templated_run_and_one_line_errors(tiny_benchmark, experts_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    args = [
        "--data",
        str(tiny_benchmark),
        "--out",
        str(out),
        "--experts",
        str(experts_dir),
        "--quiet",
        "--limit",
        "3",
    ]
    assert cli.main([*args, "--templated"]) == 0
    printed = capsys.readouterr().out
    assert "tool_trajectory" in printed and "kept 3" in printed
    assert json.loads((out / "summary.json").read_text())["tasks"]["caption_reasoning"]["kept"] == 3
    assert cli.main([*args, "--teacher-url", "http://127.0.0.1:9/v1"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "rft annotate: error: --teacher-model is required with --teacher-url"
    )
    assert cli.main([*args, "--templated", "--max-tool-calls", "6"]) == 2
    assert "max_tool_calls (6) must be below max_turns (6)" in capsys.readouterr().err
    assert cli.main(["--data", str(tmp_path / "nope"), "--out", str(out), "--templated", "--quiet"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"rft annotate: error: dataset folder not found: {tmp_path / 'nope'}"
    )


def test_annotation_settings_reject_impossible_limits():
    with pytest.raises(ValueError, match="min_tool_calls"):
        AnnotationSettings(max_tool_calls=2, min_tool_calls=3)


def test_a_corrupt_image_is_dropped_with_its_reason_and_the_rest_is_annotated(tiny_benchmark, tmp_path):
    from rft.data.schema import save_dataset

    source = load_dataset_dir(tiny_benchmark).cast_column("image", datasets.Image(decode=False))
    broken_id = source[0]["id"]

    def corrupt(row):
        if row["id"] == broken_id:
            row["image"] = {"bytes": b"not an image", "path": None}
        return row

    broken = save_dataset(source.map(corrupt).cast_column("image", datasets.Image()), tmp_path / "broken")
    result = run(
        broken, tmp_path / "o", TemplatedTeacher(), split=None, limit=3, tasks=("knowledge_transfer",)
    )
    counts = result.summary["tasks"]["knowledge_transfer"]
    assert counts["kept"] == 2 and counts["dropped_by_reason"] == {"unreadable_image": 1}
    assert broken_id in result.summary["dropped"][0]["detail"]


@pytest.mark.slow  # loads transformers and a processor: 3 s idle, up to 100 s on a busy 2-core machine
def test_the_sft_stages_consume_the_output_as_it_is(templated_run):
    """Stage 1 reads OUT/knowledge_transfer, stage 2 OUT/tool_trajectory (rft.trainers.sft_data), rendered
    with the project's chat template into one trained round per assistant turn."""
    from transformers import AutoProcessor

    from rft.models.loading import install_chat_template
    from rft.models.tiny import ensure_tiny_model
    from rft.trainers.sft_data import MultiTurnSFTCollator, load_sft_dataset

    out, _ = templated_run
    model_dir = ensure_tiny_model(Path(".cache/models"), "qwen2_5_vl", "tiny")
    processor = install_chat_template(AutoProcessor.from_pretrained(model_dir), "qwen2_5_vl")
    collator = MultiTurnSFTCollator(processor, first_round_weight=0.9)
    for stage, task in ((1, "knowledge_transfer"), (2, "tool_trajectory")):
        dataset = load_sft_dataset(out / task, stage)
        assert len(dataset) == 24
        rows_ = [dataset[i] for i in range(3)]
        batch = collator(rows_)
        for row, turns in zip(rows_, batch["assistant_turn"], strict=True):
            assistant_turns = sum(m["role"] == "assistant" for m in json.loads(row["messages"]))
            assert int(turns.max()) + 1 == assistant_turns


def test_cli_refuses_a_folder_it_did_not_make_and_leaves_it_untouched(tiny_benchmark, tmp_path, capsys):
    foreign = tmp_path / "mine"
    (foreign / "caption_vanilla").mkdir(parents=True)  # a task folder name the command writes
    (foreign / "caption_vanilla" / "notes.txt").write_text("keep me")
    (foreign / "journal.jsonl").write_text("not a journal\n")
    argv = ["--data", str(tiny_benchmark), "--out", str(foreign), "--templated", "--quiet", "--limit", "1"]
    for restart in ([], ["--restart"]):
        assert cli.main([*argv, *restart]) == 2
        assert capsys.readouterr().err.strip() == (
            f"rft annotate: error: --out {foreign}: folder exists and was not made by rft annotate; "
            "choose a new folder"
        )
    assert sorted(p.name for p in foreign.iterdir()) == ["caption_vanilla", "journal.jsonl"]
    assert (foreign / "caption_vanilla" / "notes.txt").read_text() == "keep me"
    assert (foreign / "journal.jsonl").read_text() == "not a journal\n"

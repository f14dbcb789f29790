"""Annotating one image: the teacher conversations, their verification, one re-annotation, and the
training conversation each kept annotation becomes (paper 003, sections 3.1.2-3.1.3 and 3.2.1-3.2.2;
paper 002's captions).

The annotation conversation of a tool trajectory (Eq. 1-5):

    system  Figure S8 + output format + tool schemas
    user    [image] "This is the image you need to investigate. Hint: ..."     -> Ann(1)
    user    [tool picture] "This is the result of FFTTool. The expert ..."      -> Ann(2) ...   (L <= 6)

Each Ann(l) is "<think>..</think><tool_call>..</tool_call>" or "<think>..</think><answer>..</answer>" (Eq. 3).
The stored training conversation drops the hint and the guidance and puts the stage-1 answer first
(section 3.2.2: "the first-round pair is identical to that in D1"):

    system  SYSTEM_PROMPT                        user [image] FIRST_ROUND_QUERY  -> fast answer (from D1)
    user    TOOL_GUIDANCE + FORMAT_DECLARATION   -> Ann(1)
    tool    [tool picture]                       -> Ann(2) ... -> Ann(L) (the answer)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rft.annotate import prompts
from rft.annotate.samples import Sample, ToolResult
from rft.annotate.teacher import Teacher, TeacherFailure, TeacherRequest, image_part, png_data_url, text_part
from rft.annotate.verify import (
    Reason,
    call_arguments,
    canonical_turn,
    check_caption,
    check_episode,
    check_fast_answer,
    check_reasoning_turn,
)
from rft.experts.bank import ExpertBank
from rft.parsing.tar_fas import ReasoningTurn
from rft.prompts.episodes import (
    IMAGE_PART,
    assistant_message,
    first_turn_messages,
    reexamine_message,
    tool_result_message,
)
from rft.prompts.episodes import text_part as stored_text_part
from rft.tools import ToolError, run_tool, tool_schemas
from rft.tools.zoom import DEFAULT_OUTPUT_SIZE

KNOWLEDGE_TRANSFER = "knowledge_transfer"
TOOL_TRAJECTORY = "tool_trajectory"
CAPTION_VANILLA = "caption_vanilla"
CAPTION_REASONING = "caption_reasoning"
TASKS = (KNOWLEDGE_TRANSFER, TOOL_TRAJECTORY, CAPTION_VANILLA, CAPTION_REASONING)


class AnnotationSettings(BaseModel):
    """Limits of one annotation. Paper 003: at most L_max = 6 turns (section 3.1.2); failing samples are
    re-annotated once, then discarded (section 3.1.3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_turns: int = Field(6, ge=1, le=12, description="L_max: teacher turns of a trajectory annotation")
    max_tool_calls: int = Field(
        3, ge=0, le=11, description="tool calls per trajectory; 3 = the DT-GRPO rollout limit (sec. 4.1)"
    )
    min_tool_calls: int = Field(1, ge=0, description="a kept trajectory calls at least this many tools")
    reannotations: int = Field(1, ge=0, le=5, description="re-annotations of a failed sample before the drop")
    zoom_output_size: int = Field(DEFAULT_OUTPUT_SIZE, ge=8, le=4096)

    @model_validator(mode="after")
    def _consistent(self) -> AnnotationSettings:
        if self.max_tool_calls >= self.max_turns:
            raise ValueError(
                f"max_tool_calls ({self.max_tool_calls}) must be below max_turns ({self.max_turns}): "
                "the last turn is the answer"
            )
        if self.min_tool_calls > self.max_tool_calls:
            raise ValueError(
                f"min_tool_calls ({self.min_tool_calls}) exceeds max_tool_calls ({self.max_tool_calls})"
            )
        return self


@dataclass
class Attempt:
    """One try at one task for one image."""

    reason: Reason | None = None
    detail: str = ""
    messages: list[dict[str, Any]] | None = None  # the training conversation when kept
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_pictures: list[np.ndarray] = field(default_factory=list)
    teacher_turns: list[str] = field(default_factory=list)
    expert: list[float | None] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def kept(self) -> bool:
        return self.reason is None and self.messages is not None

    def fail(self, reason: Reason, detail: str = "") -> Attempt:
        self.reason, self.detail = reason, detail
        return self


@dataclass
class Outcome:
    """The result of one task for one image after at most 1 + reannotations attempts: what the journal holds."""

    task: str
    sample_id: str
    source: str
    attempts: int
    failures: list[str]  # the reason of each failed attempt, in order
    final: Attempt

    @property
    def kept(self) -> bool:
        return self.final.kept

    def record(self) -> dict[str, Any]:
        final = self.final
        return {
            "task": self.task,
            "sample_id": self.sample_id,
            "status": "kept" if self.kept else "dropped",
            "reason": None if self.kept else str(final.reason),
            "detail": final.detail,
            "attempts": self.attempts,
            "failures": self.failures,
            "source": self.source,
            "messages": final.messages if self.kept else None,
            "tool_calls": final.tool_calls if self.kept else [],
            "tool_picture_sha256": [picture_digest(p) for p in final.tool_pictures] if self.kept else [],
            "expert": final.expert,
            "teacher_turns": final.teacher_turns,
            "usage": final.usage,
        }


def picture_digest(picture: np.ndarray) -> str:
    """Identity of a tool picture; the final build recomputes the pictures and compares."""
    return hashlib.sha256(str(picture.shape).encode() + np.ascontiguousarray(picture).tobytes()).hexdigest()


def _add_usage(total: dict[str, int], usage: dict[str, int]) -> None:
    for key, value in usage.items():
        total[key] = total.get(key, 0) + value


async def _ask(teacher: Teacher, attempt: Attempt, request: TeacherRequest) -> str | None:
    """The teacher's reply text, or None with the attempt failed (TeacherFatal propagates)."""
    try:
        reply = await teacher.complete(request)
    except TeacherFailure as failure:
        attempt.fail(failure.reason, failure.detail)
        return None
    _add_usage(attempt.usage, reply.usage)
    attempt.teacher_turns.append(reply.text)
    return reply.text


# ------------------------------------------------------------------------- knowledge transfer (D1)


def knowledge_transfer_messages(fast_answer: str) -> list[dict[str, Any]]:
    """A stage-1 row: system, [image] + first-round query, the fast answer (section 3.2.1)."""
    return [*first_turn_messages(), assistant_message(fast_answer)]


async def knowledge_transfer_attempt(sample: Sample, image_url: str, teacher: Teacher) -> Attempt:
    context, attempt = sample.context, Attempt()
    request = TeacherRequest(
        task=KNOWLEDGE_TRANSFER,
        messages=[
            {"role": "system", "content": prompts.KNOWLEDGE_TRANSFER_SYSTEM_PROMPT},
            {
                "role": "user",
                "content": [image_part(image_url), text_part(prompts.knowledge_transfer_query(context.hint))],
            },
        ],
        context=context,
    )
    text = await _ask(teacher, attempt, request)
    if text is None:
        return attempt
    fast_answer, reason = check_fast_answer(text, context.label, context.hint)
    if reason is not None:
        return attempt.fail(reason)
    attempt.messages = knowledge_transfer_messages(fast_answer)
    return attempt


# --------------------------------------------------------------------------- tool trajectory (D2)


def trajectory_messages(fast_answer: str, turns: list[str]) -> list[dict[str, Any]]:
    """The stored stage-2 conversation: the D1 prefix, the re-examine turn, then each Ann(l) with a bare
    tool picture after every tool call (no hint, no guidance: those exist only at annotation time)."""
    messages = [*first_turn_messages(), assistant_message(fast_answer), reexamine_message()]
    for index, turn in enumerate(turns):
        messages.append(assistant_message(turn))
        if index < len(turns) - 1:
            messages.append(tool_result_message())
    return messages


def _turn_request(sample: Sample, messages: list[dict[str, Any]]) -> TeacherRequest:
    return TeacherRequest(
        task=TOOL_TRAJECTORY, messages=messages, context=sample.context, tools=tool_schemas()
    )


def annotation_opening(sample: Sample, image_url: str, settings: AnnotationSettings) -> list[dict[str, Any]]:
    """S and P^(1) of Eq. 2 and 4: Figure S8 (+ format and tools), then image + query + hint."""
    query = prompts.annotation_query(sample.context.hint)
    return [
        {"role": "system", "content": prompts.annotation_system_prompt(settings.max_tool_calls)},
        {"role": "user", "content": [image_part(image_url), text_part(query)]},
    ]


@dataclass(frozen=True)
class TeacherTurn:
    """A verified Ann(l): its parse, its stored text and (for a call) the teacher's arguments object."""

    parsed: ReasoningTurn
    text: str
    arguments: dict[str, Any] | None


async def _next_turn(
    teacher: Teacher, attempt: Attempt, sample: Sample, messages: list[dict[str, Any]]
) -> TeacherTurn | None:
    """Ann(l) of Eq. 2, checked (format, schema, leaks) and re-rendered; None with the attempt failed."""
    text = await _ask(teacher, attempt, _turn_request(sample, messages))
    if text is None:
        return None
    known = [p for p in attempt.expert if p is not None]
    turn, reason = check_reasoning_turn(text, sample.context.hint, known)
    if reason is not None:
        attempt.fail(reason, (turn.error or "")[:200])
        return None
    arguments = call_arguments(text) if turn.kind == "tool_call" else None
    return TeacherTurn(turn, canonical_turn(turn, arguments), arguments)


def _tool_result(
    sample: Sample,
    attempt: Attempt,
    turn: TeacherTurn,
    turns_left: int,
    experts: ExpertBank | None,
    settings: AnnotationSettings,
) -> dict[str, Any] | None:
    """Run the turn's call and return P^(l+1) of Eq. 5 (tool picture + guidance); None with the attempt
    failed when the call is over the limit or the tool refuses it."""
    if len(attempt.tool_calls) >= settings.max_tool_calls:
        attempt.fail(Reason.TOO_MANY_TOOL_CALLS, f"call {len(attempt.tool_calls) + 1}")
        return None
    name, arguments = turn.parsed.tool_call.name, turn.arguments
    try:
        picture = run_tool(name, sample.image, arguments, output_size=settings.zoom_output_size)
    except ToolError as error:
        attempt.fail(Reason.TOOL_ERROR, str(error))
        return None
    probability = experts.spoof_probability(name, picture) if experts else None
    attempt.tool_calls.append({"name": name, "arguments": arguments})
    attempt.tool_pictures.append(picture)
    attempt.expert.append(probability)
    sample.context.tool_results.append(ToolResult(name, arguments, probability))
    calls_left = settings.max_tool_calls - len(attempt.tool_calls)
    guidance = (
        f"{prompts.guidance_sentence(name, probability)} {prompts.budget_sentence(calls_left, turns_left)}"
    )
    return {"role": "user", "content": [image_part(png_data_url(picture)), text_part(guidance.strip())]}


async def trajectory_attempt(
    sample: Sample,
    image_url: str,
    fast_answer: str,
    teacher: Teacher,
    experts: ExpertBank | None,
    settings: AnnotationSettings,
) -> Attempt:
    """One multi-turn annotation (Eq. 1-5), then the check of the whole episode (section 3.1.3)."""
    attempt = Attempt()
    sample.context.tool_results = []
    messages = annotation_opening(sample, image_url, settings)
    turns: list[str] = []
    for turn_number in range(1, settings.max_turns + 1):
        turn = await _next_turn(teacher, attempt, sample, messages)
        if turn is None:
            return attempt
        turns.append(turn.text)
        messages.append({"role": "assistant", "content": turn.text})
        if turn.parsed.kind == "answer":
            return _verified_trajectory(attempt, sample, fast_answer, turns, settings)
        result = _tool_result(sample, attempt, turn, settings.max_turns - turn_number, experts, settings)
        if result is None:
            return attempt
        messages.append(result)
    return attempt.fail(Reason.NO_ANSWER, f"{settings.max_turns} turns without an answer")


def _verified_trajectory(
    attempt: Attempt, sample: Sample, fast_answer: str, turns: list[str], settings: AnnotationSettings
) -> Attempt:
    label = sample.context.label
    reason = check_episode([fast_answer, *turns], label, settings.max_tool_calls, settings.min_tool_calls)
    if reason is not None:
        return attempt.fail(reason)
    attempt.messages = trajectory_messages(fast_answer, turns)
    return attempt


# ------------------------------------------------------------------------------ captions (paper 002)


def caption_messages(reasoning: bool, caption: str) -> list[dict[str, Any]]:
    prompt = prompts.REASONING_TRAINING_PROMPT if reasoning else prompts.VANILLA_TRAINING_PROMPT
    return [{"role": "user", "content": [IMAGE_PART, stored_text_part(prompt)]}, assistant_message(caption)]


async def caption_attempt(sample: Sample, image_url: str, teacher: Teacher, reasoning: bool) -> Attempt:
    context, attempt = sample.context, Attempt()
    if reasoning:
        system, user = prompts.reasoning_caption_messages_text(context.label, context.attack_category)
    else:
        system, user = prompts.vanilla_caption_messages_text(
            context.label, context.attack, context.attack_category, context.resolution
        )
    request = TeacherRequest(
        task=CAPTION_REASONING if reasoning else CAPTION_VANILLA,
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": [image_part(image_url), text_part(user)]},
        ],
        context=context,
    )
    text = await _ask(teacher, attempt, request)
    if text is None:
        return attempt
    caption = text.strip()
    reason = check_caption(caption, context.label, reasoning, context.hint)
    if reason is not None:
        return attempt.fail(reason)
    attempt.messages = caption_messages(reasoning, caption)
    return attempt


# ---------------------------------------------------------------------------------- one task


async def annotate_task(
    task: str,
    sample: Sample,
    image_url: str,
    teacher: Teacher,
    experts: ExpertBank | None,
    settings: AnnotationSettings,
    fast_answer: str | None = None,
) -> Outcome:
    """Run `task` for one image, re-annotating after a failed verification (section 3.1.3)."""
    failures: list[str] = []
    attempt = Attempt()
    total = 1 + settings.reannotations
    for _ in range(total):
        if task == KNOWLEDGE_TRANSFER:
            attempt = await knowledge_transfer_attempt(sample, image_url, teacher)
        elif task == TOOL_TRAJECTORY:
            if fast_answer is None:
                attempt = Attempt().fail(
                    Reason.FAST_ANSWER_MISSING, "the knowledge-transfer answer was dropped"
                )
                return Outcome(
                    task, sample.context.sample_id, teacher.source, 0, [str(attempt.reason)], attempt
                )
            attempt = await trajectory_attempt(sample, image_url, fast_answer, teacher, experts, settings)
        else:
            attempt = await caption_attempt(sample, image_url, teacher, reasoning=task == CAPTION_REASONING)
        if attempt.kept:
            break
        failures.append(str(attempt.reason))
    return Outcome(
        task, sample.context.sample_id, teacher.source, len(failures) + attempt.kept, failures, attempt
    )

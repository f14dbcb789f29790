"""The teacher-free path: a deterministic, templated writer with the interface of a teacher.

For machines without a capable model (the CPU demo, the tests). It answers every request the annotation
pipeline makes - the stage-1 fast answer, each turn of a tool trajectory, vanilla and reasoning captions -
from what is known about the image instead of looking at it: the label and attack type, the capture
metadata, and the expert models' outputs (section 3.1.2), both the tool results of the conversation and,
when experts are loaded, an expert scan of the image with each tool's default arguments. Its text goes
through the same verification as a teacher's and is stored with `source = "templated"`.

Everything is a pure function of the sample id and what the experts say, so reruns reproduce it exactly.
Choices among phrasings and tools are made by hashing the sample id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from rft.annotate.samples import SampleContext
from rft.annotate.teacher import TeacherReply, TeacherRequest
from rft.prompts.tar_fas import ANSWER_REAL, ANSWER_SPOOF
from rft.tools import TOOL_NAMES

SOURCE = "templated"

# Which tools fit which attack family, most telling first (paper 003, section 3.1.1: texture -> paper and
# masks, frequency -> display and print, structure -> mask edges and screen boundaries, zoom -> local detail).
TOOL_PLANS: dict[str, tuple[str, ...]] = {
    "replay": ("FFTTool", "ZoomInTool", "WaveletTransformTool", "HOGTool"),
    "print": ("LBPTool", "FFTTool", "ZoomInTool", "WaveletTransformTool"),
    "mask": ("EdgeDetectionTool", "LBPTool", "HOGTool", "ZoomInTool"),
    "partial": ("ZoomInTool", "EdgeDetectionTool", "LBPTool", "FFTTool"),
    "makeup": ("ZoomInTool", "LBPTool", "WaveletTransformTool", "HOGTool"),
    "other": ("ZoomInTool", "FFTTool", "LBPTool", "EdgeDetectionTool"),
    "live": ("FFTTool", "LBPTool", "ZoomInTool", "HOGTool", "WaveletTransformTool", "EdgeDetectionTool"),
}

MEDIUM: dict[str, str] = {
    "replay": "a screen replay",
    "print": "a printed photo",
    "mask": "a mask",
    "partial": "a partial cover",
    "makeup": "heavy makeup",
    "other": "a presentation attack",
}

# The wording is compact on purpose: at CPU-demo scale every token of a turn is paid for in SFT steps and in
# rollout length (docs/EFFICACY.md), and short sentences from a small vocabulary are what a tiny model can
# learn to write whole. A real teacher's text for real data is not shortened.

# What each tool is called on to test (the "expectation" of Figure S8's workflow rule 2).
EXPECTATIONS: dict[str, str] = {
    "FFTTool": "periodic peaks if recaptured",
    "LBPTool": "uniform texture if fake",
    "WaveletTransformTool": "regular fine detail if recaptured",
    "EdgeDetectionTool": "sharp outline if fake",
    "HOGTool": "flat gradients if fake",
    "ZoomInTool": "dots or seams if fake",
}

PURPOSES: dict[str, str] = {
    "FFTTool": "check the spectrum",
    "LBPTool": "check the texture",
    "WaveletTransformTool": "check the fine detail",
    "EdgeDetectionTool": "check the edges",
    "HOGTool": "check the gradients",
    "ZoomInTool": "zoom in",
}

SPOOF_FINDINGS: dict[str, dict[str, str]] = {
    "FFTTool": {
        "replay": "The spectrum shows off-axis peaks: screen moire.",
        "print": "The spectrum shows regular peaks: halftone dots.",
        "default": "The spectrum shows regular peaks.",
    },
    "LBPTool": {
        "print": "The texture repeats like paper dots.",
        "mask": "The texture is uniform like a mask.",
        "replay": "The texture repeats like a pixel grid.",
        "default": "The texture is too uniform for skin.",
    },
    "WaveletTransformTool": {
        "replay": "The fine detail is periodic, as on a screen.",
        "print": "The fine detail is a regular dot pattern.",
        "default": "The fine detail is too regular for skin.",
    },
    "EdgeDetectionTool": {
        "mask": "A sharp outline runs around the face: a mask edge.",
        "partial": "Straight edges frame part of the face: a cut-out.",
        "default": "Straight sharp edges cross the face.",
    },
    "HOGTool": {
        "mask": "The gradients are stiff and break at the border.",
        "default": "The gradients are flat, as on paper.",
    },
    "ZoomInTool": {
        "replay": "Up close the skin is a pixel grid.",
        "print": "Up close the skin is ink dots.",
        "mask": "Up close the surface is smooth, with a seam.",
        "partial": "Up close one patch differs from the skin.",
        "default": "Up close the skin detail is missing.",
    },
}

LIVE_FINDINGS: dict[str, str] = {
    "FFTTool": "The spectrum falls off smoothly, with no peaks.",
    "LBPTool": "The texture is irregular, like skin.",
    "WaveletTransformTool": "The fine detail is random noise, like skin.",
    "EdgeDetectionTool": "The edges follow the natural features.",
    "HOGTool": "The gradients curve like a real face.",
    "ZoomInTool": "Up close the skin shows pores.",
}

# The same evidence in the words of someone looking at the image itself (stage-1 answers and captions, where
# no tool has been called). Each names the cue its tool tests, so the tool a trajectory calls first follows
# from the cue its fast answer states.
SPOOF_APPEARANCE: dict[str, dict[str, str]] = {
    "FFTTool": {
        "replay": "A faint ripple lies over the skin, like screen moire.",
        "print": "A fine regular pattern covers the face, like print dots.",
        "default": "Fine detail follows a regular pattern.",
    },
    "LBPTool": {
        "print": "The skin looks like paper dots, with no pores.",
        "mask": "The skin looks uniform and synthetic.",
        "replay": "The skin looks like a grid, with no pores.",
        "default": "The skin texture looks too uniform.",
    },
    "WaveletTransformTool": {
        "replay": "Fine detail looks regular, as on a screen.",
        "print": "Fine detail looks like ink dots.",
        "default": "Fine detail looks too regular.",
    },
    "EdgeDetectionTool": {
        "mask": "A sharp outline runs around the face.",
        "partial": "A straight border frames part of the face.",
        "default": "Straight sharp lines cross the face.",
    },
    "HOGTool": {
        "mask": "The shading is stiff at the face border.",
        "default": "The shading is flat, as on paper.",
    },
    "ZoomInTool": {
        "replay": "Color fringes show around the eyes.",
        "print": "Tones look washed out around the eyes.",
        "mask": "A seam shows near the face edge.",
        "partial": "One region differs from the skin around it.",
        "default": "Skin detail looks missing.",
    },
}
LIVE_APPEARANCE: dict[str, str] = {
    "FFTTool": "Fine detail looks irregular, with no ripple.",
    "LBPTool": "The skin shows pores and irregular texture.",
    "WaveletTransformTool": "Fine detail and noise look natural.",
    "EdgeDetectionTool": "The edges follow the natural features.",
    "HOGTool": "The shading curves around the nose and jaw.",
    "ZoomInTool": "Up close the skin looks natural.",
}


def appearance_cues(context: SampleContext, tools: list[str]) -> list[str]:
    """What the image looks like, one sentence per tool of `tools` (in that order)."""
    if context.label == "live":
        return [LIVE_APPEARANCE[tool] for tool in tools]
    return [SPOOF_APPEARANCE[tool].get(family(context), SPOOF_APPEARANCE[tool]["default"]) for tool in tools]


INCONCLUSIVE = (
    "This view is not conclusive.",
    "The result is ambiguous here.",
)

SCANS_SPOOF: dict[str, tuple[str, ...]] = {
    "replay": ("The face looks flat and glossy.", "The face looks flat and evenly lit."),
    "print": ("The face looks flat and dull.", "The face looks flat, with muted colors."),
    "mask": ("The face looks stiff.", "The face looks rigid and even."),
    "partial": ("Part of the face looks different.", "One region looks pasted on."),
    "default": ("The face looks unusual.",),
}
SCANS_LIVE = (
    "The face looks natural.",
    "The face shows natural shading.",
)

LIGHTING = {
    "strong": "The face is brightly lit",
    "normal": "The face is evenly lit",
    "dark": "The scene is dim",
    "back": "The face is lit from behind",
}


def stable_index(count: int, *keys: Any) -> int:
    """A number in [0, count) that depends only on `keys` (Python's hash() is salted per process)."""
    digest = hashlib.sha256("|".join(str(key) for key in keys).encode()).hexdigest()
    return int(digest[:12], 16) % count


def pick(options: tuple[str, ...] | list[str], *keys: Any) -> str:
    return options[stable_index(len(options), *keys)]


def family(context: SampleContext) -> str:
    if context.label == "live":
        return "live"
    return context.attack_category if context.attack_category in MEDIUM else "other"


def agrees(context: SampleContext, probability: float | None) -> bool | None:
    """Whether an expert's probability points to the label (None for a tool without an expert)."""
    if probability is None:
        return None
    return (probability >= 0.5) == (context.label == "spoof")


def spoof_finding(tool: str, context: SampleContext) -> str:
    findings = SPOOF_FINDINGS[tool]
    return findings.get(family(context), findings["default"])


def finding(tool: str, context: SampleContext) -> str:
    return LIVE_FINDINGS[tool] if context.label == "live" else spoof_finding(tool, context)


# --------------------------------------------------------------------------------- trajectory plan


def tool_plan(context: SampleContext) -> list[str]:
    """The tools this writer calls, in order. Attacks: the family's plan with the tool whose default-argument
    expert is most sure of a spoof trace moved first (when experts are loaded). Live faces: all six tools
    rotated by the sample id, so live trajectories spread over the tools instead of all starting with the
    one whose expert happens to be surest of "live" (the diversity DT-GRPO later rewards, Eq. 12)."""
    plan = list(TOOL_PLANS[family(context)])
    if context.label == "live":
        shift = stable_index(len(plan), context.sample_id, "rotation")
        return plan[shift:] + plan[:shift]
    scored = [tool for tool in plan if tool in context.evidence]
    if scored:
        best = max(scored, key=lambda tool: context.evidence[tool])
        plan.remove(best)
        plan.insert(0, best)
    return plan


def planned_calls(context: SampleContext, min_calls: int, max_calls: int) -> int:
    """How many tools this sample's trajectory calls at least: one or two, within the limits."""
    return max(min_calls, min(max_calls, 1 + stable_index(2, context.sample_id, "calls")))


def zoom_box(context: SampleContext) -> list[int]:
    """The ZoomInTool box: the eyes or the mouth for partial attacks, the central face otherwise, from the
    face box (or the middle of the image when there is none)."""
    width, height = context.width, context.height
    x0, y0, x1, y1 = context.face_box or (width // 8, height // 8, width - width // 8, height - height // 8)
    face_width, face_height = x1 - x0, y1 - y0
    if context.spoof_type == "partial_mouth":
        top, bottom = 0.6, 0.95
    elif context.spoof_type in ("partial_eye", "partial_paperglasses"):
        top, bottom = 0.2, 0.55
    else:
        top, bottom = 0.25, 0.75
    box = [
        x0 + round(0.15 * face_width),
        y0 + round(top * face_height),
        x0 + round(0.85 * face_width),
        y0 + round(bottom * face_height),
    ]
    box[2], box[3] = max(box[2], box[0] + 2), max(box[3], box[1] + 2)
    return [min(max(v, 0), limit) for v, limit in zip(box, (width, height, width, height), strict=True)]


def templated_arguments(tool: str, context: SampleContext) -> dict[str, Any]:
    arguments: dict[str, Any] = {"expectation": EXPECTATIONS[tool]}
    if tool == "ZoomInTool":
        arguments["bbox"] = zoom_box(context)
    return arguments


def tool_call_text(tool: str, context: SampleContext) -> str:
    payload = json.dumps({"name": tool, "arguments": templated_arguments(tool, context)}, ensure_ascii=False)
    return f"<tool_call>\n{payload}\n</tool_call>"


# ------------------------------------------------------------------------------------------- writer


class TemplatedTeacher:
    """Answers the pipeline's requests from the sample's context (see the module docstring)."""

    source = SOURCE

    def __init__(
        self, max_tool_calls: int = 3, min_tool_calls: int = 1, tools: Sequence[str] | None = None
    ) -> None:
        self.max_tool_calls = max_tool_calls
        self.min_tool_calls = min_tool_calls
        # The run's tool set (run.tools): stage-2 trajectories call only these. Stage 1's text keeps every
        # tool's cue, so that it is the same for every tool set (the ablation shares it).
        self.tools = tuple(tools) if tools is not None else TOOL_NAMES
        self.requests = 0

    async def complete(self, request: TeacherRequest) -> TeacherReply:
        self.requests += 1
        context: SampleContext = request.context
        writers = {
            "knowledge_transfer": self.fast_answer,
            "tool_trajectory": lambda c: self.trajectory_turn(c, request.messages),
            "caption_vanilla": self.vanilla_caption,
            "caption_reasoning": self.reasoning_caption,
        }
        if request.task not in writers:
            raise ValueError(f"the templated writer has no template for task {request.task!r}")
        return TeacherReply(text=writers[request.task](context))

    async def aclose(self) -> None:
        return None

    # ------------------------------------------------------------------ stage 1: fast answer (I-FAS)

    def explanation(self, context: SampleContext) -> str:
        cue = appearance_cues(context, self.supported_tools(context))[0]
        closing = (
            "There is no screen, print or mask."
            if context.label == "live"
            else f"It looks like {MEDIUM[family(context)]}."
        )
        return " ".join([self.scan(context), cue, closing])

    def fast_answer(self, context: SampleContext) -> str:
        token = ANSWER_SPOOF if context.label == "spoof" else ANSWER_REAL
        return f"{token}<reason>{self.explanation(context)}</reason>"

    def scan(self, context: SampleContext) -> str:
        if context.label == "live":
            return pick(SCANS_LIVE, context.sample_id, "scan")
        options = SCANS_SPOOF.get(family(context), SCANS_SPOOF["default"])
        return pick(options, context.sample_id, "scan")

    def supported_tools(self, context: SampleContext) -> list[str]:
        """The plan's tools, those whose default-argument expert agrees with the label first."""
        plan = tool_plan(context)
        agreeing = [tool for tool in plan if agrees(context, context.evidence.get(tool)) is not False]
        return agreeing + [tool for tool in plan if tool not in agreeing]

    # -------------------------------------------------------------------- stage 2: trajectory turns

    def trajectory_turn(self, context: SampleContext, messages: list[dict[str, Any]]) -> str:
        results = context.tool_results
        if not results and self.max_tool_calls == 0:
            thinking = f"{self.scan(context)} {self.conclusion(context)}"
            return f"<think>{thinking}</think>\n<answer>{self.answer_token(context)}</answer>"
        if not results:
            tool = self.allowed(self.supported_tools(context))[0]
            # The first call tests the cue the fast answer stated (its tool's appearance), so the tool follows
            # from the model's own words.
            thinking = f"{appearance_cues(context, [tool])[0]} I will {PURPOSES[tool]}."
            return f"<think>{thinking}</think>\n{tool_call_text(tool, context)}"
        last = results[-1]
        verdict = agrees(context, last.spoof_probability)
        observation = (
            finding(last.name, context)
            if verdict is not False
            else pick(INCONCLUSIVE, context.sample_id, len(results))
        )
        used = {result.name for result in results}
        remaining = [tool for tool in self.allowed(tool_plan(context)) if tool not in used]
        enough = len(results) >= planned_calls(context, self.min_tool_calls, self.max_tool_calls)
        must_answer = len(results) >= self.max_tool_calls or not remaining or _told_to_answer(messages)
        if must_answer or (enough and verdict is not False):
            thinking = f"{observation} {self.conclusion(context)}"
            return f"<think>{thinking}</think>\n<answer>{self.answer_token(context)}</answer>"
        tool = remaining[0]
        thinking = f"{observation} Next I will {PURPOSES[tool]}."
        return f"<think>{thinking}</think>\n{tool_call_text(tool, context)}"

    def allowed(self, plan: list[str]) -> list[str]:
        """`plan` without the tools outside the set; the set itself when the plan has none of them."""
        return [tool for tool in plan if tool in self.tools] or list(self.tools)

    def conclusion(self, context: SampleContext) -> str:
        if context.label == "live":
            return "So the face is real."
        return f"So this is {MEDIUM[family(context)]}: a spoof."

    def answer_token(self, context: SampleContext) -> str:
        return ANSWER_SPOOF if context.label == "spoof" else ANSWER_REAL

    # ---------------------------------------------------------------------- captions (paper 002)

    def lighting(self, context: SampleContext) -> str:
        opening = LIGHTING.get(context.illumination or "", "The face is lit")
        if context.label == "live":
            return (
                f"{opening}, and the shadows under the nose and along the jaw follow the light consistently."
            )
        return f"{opening}, but the shading is flatter than the light would make it on a rounded face."

    def vanilla_caption(self, context: SampleContext) -> str:
        cues = appearance_cues(context, self.supported_tools(context))[:2]
        depth = (
            "The nose and cheeks stand out with natural relief."
            if context.label == "live"
            else "Nose, cheeks and eyes sit on one flat plane, without the relief of a real head."
        )
        verdict = (
            "These characteristics indicate that the image is a real, live face."
            if context.label == "live"
            else f"These characteristics indicate that the image is a spoof, {MEDIUM[family(context)]}."
        )
        return " ".join([self.scan(context), *cues, self.lighting(context), depth, verdict])

    def reasoning_caption(self, context: SampleContext) -> str:
        live = context.label == "live"
        tools = self.supported_tools(context)
        cues = appearance_cues(context, tools)[:2]
        artifacts = (
            "There is no blurriness, pixelation or mismatched edge beyond what the camera itself produces."
            if live
            else cues[0]
        )
        features = (
            "The eyes, nose and mouth are sharp and coherent, and the skin shows pores and irregular texture."
            if live
            else cues[-1]
        )
        context_text = (
            "Nothing around the face suggests a medium held in front of the camera."
            if live
            else "The framing and the uniform surface suggest a face presented on a medium, not in person."
        )
        judgment = (
            "Weighing these observations, the image is a real, live face."
            if live
            else f"Weighing these observations, the image is a spoof, {MEDIUM[family(context)]}."
        )
        stages = [
            ("Initial observation", self.scan(context)),
            ("Artifact detection", artifacts),
            ("Feature analysis", features),
            ("Examine lighting and shadows", self.lighting(context)),
            ("Consider context", context_text),
            ("Final judgment", judgment),
        ]
        return "\n".join(f"{number}. {name}: {text}" for number, (name, text) in enumerate(stages, start=1))


def _told_to_answer(messages: list[dict[str, Any]]) -> bool:
    """Whether the last user turn says no tool calls are left (rft.annotate.prompts.budget_sentence)."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        return any(
            "No more tool calls" in str(part.get("text", "")) for part in parts if isinstance(part, dict)
        )
    return False

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
from typing import Any

from rft.annotate.samples import SampleContext
from rft.annotate.teacher import TeacherReply, TeacherRequest
from rft.prompts.tar_fas import ANSWER_REAL, ANSWER_SPOOF

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
    "replay": "a face displayed on a screen",
    "print": "a printed photo",
    "mask": "a mask worn over the face",
    "partial": "a printed patch covering part of the face",
    "makeup": "heavy makeup altering the face",
    "other": "a physical presentation attack",
}

# What each tool is called on to test (the "expectation" of Figure S8's workflow rule 2).
EXPECTATIONS: dict[str, str] = {
    "FFTTool": "isolated off-axis peaks from a periodic pattern (screen pixel grid, moire, halftone) if this is a "
    "recapture; a smooth radial falloff if the face is real",
    "LBPTool": "a repetitive, uniform texture of paper, screen or mask material if this is an attack; irregular "
    "skin micro-texture if it is real",
    "WaveletTransformTool": "structured, periodic energy in the detail bands if the face was recaptured; fine "
    "irregular noise if it is real",
    "EdgeDetectionTool": "sharp contours of a mask outline, a cut-out or a medium border if this is an attack; "
    "only the natural facial edges if it is real",
    "HOGTool": "weak, uniform gradients of a flat surface if this is an attack; gradients that follow a 3-D face "
    "if it is real",
    "ZoomInTool": "local traces such as dots, a pixel grid, paper edges or mask seams if this is an attack; pores "
    "and natural skin detail if it is real",
}

PURPOSES: dict[str, str] = {
    "FFTTool": "check the frequency spectrum for periodic patterns",
    "LBPTool": "inspect the skin's local texture patterns",
    "WaveletTransformTool": "compare the fine-scale detail bands across the face",
    "EdgeDetectionTool": "look for unnatural contours around and inside the face",
    "HOGTool": "check whether the gradient structure fits a three-dimensional face",
    "ZoomInTool": "zoom in on the region where local traces would show",
}

SPOOF_FINDINGS: dict[str, dict[str, str]] = {
    "FFTTool": {
        "replay": "The spectrum shows bright isolated peaks away from the central cross, placed symmetrically: a "
        "periodic pattern that a face does not produce, the signature of moire from a screen's pixel grid.",
        "print": "The spectrum carries regularly spaced peaks at mid to high frequencies, the periodic trace of "
        "halftone dots rather than the smooth falloff of a natural image.",
        "default": "The spectrum shows energy concentrated in a few directions and frequencies, a regular structure "
        "that a live face does not produce.",
    },
    "LBPTool": {
        "print": "The texture map repeats the same small codes in a regular pattern across the cheeks and forehead "
        "instead of the irregular micro-texture of skin: halftone dots and paper grain.",
        "mask": "Large areas of the face show the same uniform codes where skin pores should vary; the surface "
        "texture looks like a synthetic material.",
        "replay": "The texture map is unusually regular, with grid-like repetitions over the skin that point to "
        "screen pixels rather than pores.",
        "default": "The local texture is more uniform and repetitive than skin, which suggests an artificial "
        "surface.",
    },
    "WaveletTransformTool": {
        "replay": "The detail bands hold structured, periodic energy spread over the whole face, typical of a "
        "recaptured screen rather than of a single capture of skin.",
        "print": "The detail bands show a regular fine pattern across the face, the kind a printed dot screen "
        "leaves.",
        "default": "The detail bands are unevenly structured, with regular energy where skin would show random "
        "noise.",
    },
    "EdgeDetectionTool": {
        "mask": "A sharp, continuous contour runs around the face and the eye openings: an outline that skin does "
        "not have, consistent with the edge of a mask.",
        "partial": "Straight, high-contrast edges frame a region of the face, the border of a cut-out placed over "
        "it.",
        "default": "The edges are dominated by straight, high-contrast lines while the facial features stay weak, "
        "as on a flat medium.",
    },
    "HOGTool": {
        "mask": "The gradients over the cheeks are stiff and uniform and change abruptly at the face border, "
        "unlike the smooth curvature of a real face.",
        "default": "The gradients are weak and uniform across the cheeks and forehead, lacking the curvature of a "
        "three-dimensional face: the face looks flat.",
    },
    "ZoomInTool": {
        "replay": "Enlarged, the skin shows a fine regular grid and slight color fringes instead of pores.",
        "print": "Enlarged, the skin shows a dot pattern and washed-out tones, like ink on paper.",
        "mask": "Enlarged, the surface looks smooth and uniform, with a seam near its edge and no pores.",
        "partial": "Enlarged, the region shows a patch whose texture, color and sharpness differ from the skin "
        "around it.",
        "default": "Enlarged, the region lacks the fine irregular detail of skin.",
    },
}

LIVE_FINDINGS: dict[str, str] = {
    "FFTTool": "The spectrum falls off smoothly from the center with no isolated off-axis peaks: there is no "
    "periodic pattern from a screen or a print.",
    "LBPTool": "The texture codes vary irregularly over the cheeks and forehead like natural skin micro-texture, "
    "with no repeating pattern.",
    "WaveletTransformTool": "The detail bands show fine, irregular noise spread evenly over the face, as a single "
    "capture of skin does.",
    "EdgeDetectionTool": "The edges follow the natural features (eyes, nostrils, lips, jaw) and fade smoothly; "
    "there is no cut-out contour or medium border.",
    "HOGTool": "The gradients curve smoothly around the nose, cheeks and jaw, consistent with a three-dimensional "
    "face.",
    "ZoomInTool": "Enlarged, the skin shows pores and fine irregular texture, with no dots, grid or paper edge.",
}

# The same evidence in the words of someone looking at the image itself (stage-1 answers and captions, where
# no tool has been called).
SPOOF_APPEARANCE: dict[str, dict[str, str]] = {
    "FFTTool": {
        "replay": "A faint regular ripple lies over the skin, the moire of a screen's pixel grid.",
        "print": "A fine regular pattern runs across the whole face, as a printed dot screen leaves.",
        "default": "Fine detail follows a regular pattern that skin does not have.",
    },
    "LBPTool": {
        "print": "Up close the skin is a regular dot pattern with paper grain instead of pores.",
        "mask": "The skin surface is uniform and synthetic, without the variation of pores.",
        "replay": "The skin shows a grid-like regularity instead of pores.",
        "default": "The skin texture is more uniform and repetitive than real skin.",
    },
    "WaveletTransformTool": {
        "replay": "Fine detail is regular and evenly spread, as in an image shown on a screen.",
        "print": "Fine detail is regular across the face, like ink dots on paper.",
        "default": "Fine detail is structured where real skin would look random.",
    },
    "EdgeDetectionTool": {
        "mask": "A sharp outline runs around the face and the eye openings, the edge of a mask.",
        "partial": "A straight, sharp border frames part of the face, the edge of a cut-out placed over it.",
        "default": "Straight, sharp lines cross the face while the features themselves look soft.",
    },
    "HOGTool": {
        "mask": "Shading over the cheeks is stiff and changes abruptly at the face border.",
        "default": "Shading is even across the cheeks and forehead, as on a flat surface.",
    },
    "ZoomInTool": {
        "replay": "Around the eyes and cheeks, color fringes and a fine grid replace skin detail.",
        "print": "Around the eyes and cheeks, tones are washed out and detail dissolves into dots.",
        "mask": "Around the edge of the face, the surface is smooth, with a visible seam.",
        "partial": "One region differs from the skin around it in texture, color and sharpness.",
        "default": "Locally, the fine irregular detail of skin is missing.",
    },
}
LIVE_APPEARANCE: dict[str, str] = {
    "FFTTool": "Fine detail is irregular, with no ripple or regular pattern over the skin.",
    "LBPTool": "The skin shows irregular pores and fine texture, with no repeating pattern.",
    "WaveletTransformTool": "Fine detail and sensor noise are even over the face, as in a single capture.",
    "EdgeDetectionTool": "Edges follow the natural features and fade smoothly, with no cut-out outline.",
    "HOGTool": "Shading curves smoothly around the nose, cheeks and jaw.",
    "ZoomInTool": "Up close, the skin shows pores and fine irregular texture.",
}


def appearance_cues(context: SampleContext, tools: list[str]) -> list[str]:
    """What the image looks like, one sentence per tool of `tools` (in that order)."""
    if context.label == "live":
        return [LIVE_APPEARANCE[tool] for tool in tools]
    return [SPOOF_APPEARANCE[tool].get(family(context), SPOOF_APPEARANCE[tool]["default"]) for tool in tools]


INCONCLUSIVE = (
    "This view alone is not conclusive: the pattern is weak and could come from the camera itself.",
    "The result is ambiguous here, so I should not rely on it alone.",
    "Nothing decisive stands out in this view.",
)

SCANS_SPOOF: dict[str, tuple[str, ...]] = {
    "replay": (
        "The face looks flat and its colors slightly shifted, with a faint sheen over the skin.",
        "The facial region appears evenly lit from the front, as if it were emitting light, and fine detail is soft.",
    ),
    "print": (
        "The face looks flat, with muted colors and soft detail around the eyes and mouth.",
        "Skin tones look washed out and the face lacks depth, with little fine texture visible.",
    ),
    "mask": (
        "The face looks stiff and uniformly colored, and its outline does not blend into the head.",
        "The expression looks rigid and the surface of the face is unusually even.",
    ),
    "partial": (
        "Part of the face looks different from the rest: its sharpness and color do not match the surrounding skin.",
        "One region of the face looks pasted on, with an unnatural border.",
    ),
    "default": ("The face shows irregularities that deserve a closer look.",),
}
SCANS_LIVE = (
    "The face shows natural shading and proportions, and the expression looks relaxed.",
    "Skin tone and shading vary naturally over the face, and the features look three-dimensional.",
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

    def __init__(self, max_tool_calls: int = 3, min_tool_calls: int = 1) -> None:
        self.max_tool_calls = max_tool_calls
        self.min_tool_calls = min_tool_calls
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
            "There is no sign of a screen, print or mask, so this is a real person."
            if context.label == "live"
            else f"These are the marks of {MEDIUM[family(context)]}."
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
            thinking = f"A first look at the facial region: {self.scan(context)} {self.conclusion(context)}"
            return f"<think>{thinking}</think>\n<answer>{self.answer_token(context)}</answer>"
        if not results:
            tool = tool_plan(context)[0]
            thinking = (
                f"A first look at the facial region: {self.scan(context)} To test this, I will "
                f"{PURPOSES[tool]}."
            )
            return f"<think>{thinking}</think>\n{tool_call_text(tool, context)}"
        last = results[-1]
        verdict = agrees(context, last.spoof_probability)
        observation = (
            finding(last.name, context)
            if verdict is not False
            else pick(INCONCLUSIVE, context.sample_id, len(results))
        )
        used = {result.name for result in results}
        remaining = [tool for tool in tool_plan(context) if tool not in used]
        enough = len(results) >= planned_calls(context, self.min_tool_calls, self.max_tool_calls)
        must_answer = len(results) >= self.max_tool_calls or not remaining or _told_to_answer(messages)
        if must_answer or (enough and verdict is not False):
            thinking = f"{observation} {self.conclusion(context)}"
            return f"<think>{thinking}</think>\n<answer>{self.answer_token(context)}</answer>"
        tool = remaining[0]
        thinking = f"{observation} To gather more evidence, I will {PURPOSES[tool]}."
        return f"<think>{thinking}</think>\n{tool_call_text(tool, context)}"

    def conclusion(self, context: SampleContext) -> str:
        if context.label == "live":
            return (
                "Taken together, the face shows natural texture and shading and no trace of a screen, print "
                "or mask: it is a real face."
            )
        return f"Taken together, these physical traces show {MEDIUM[family(context)]}: the image is a spoof."

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

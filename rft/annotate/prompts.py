"""Every text the annotation pipeline sends to a teacher or stores for training.

Paper 003 (TAR-FAS): the annotator's system prompt is Figure S8 verbatim (rft.prompts.tar_fas); turn 1 is
image + query + label hint (Eq. 4); later turns are the tool picture + the expert's guidance (Eq. 5), e.g.
"This is the result of FFTTool. The expert predicts 87% there's spoof trace". The paper constrained the
teacher's turns with Gemini's structured output; an OpenAI-compatible endpoint has no such mode that every
server implements, so the output format and the tools' JSON schemas are appended to Figure S8 in text
(`ANNOTATION_FORMAT`), written in the training format so that a turn needs no translation.

Paper 002 (caption supervision): the vanilla (Figure 1) and reasoning (Figure 3) caption-generation prompts,
filled in label-aware, and label-neutral versions of their instructions as the stored training prompts.
"""

from __future__ import annotations

import json

from rft.prompts import tar_fas
from rft.tools import tool_schemas

# ------------------------------------------------------------------------------------------ hints (Eq. 4)

# H(I) of Eq. 4 ("e.g. photo attack, phone attack"), by attack type of the shared vocabulary.
ATTACK_DESCRIPTIONS: dict[str, str] = {
    "live": "real face (bona fide presentation, no attack)",
    "print": "print attack (a printed photo of a face)",
    "print_photo": "print attack (a printed photo)",
    "print_poster": "print attack (a printed poster)",
    "print_a4": "print attack (a face printed on A4 paper)",
    "replay": "replay attack (a face shown on a screen)",
    "replay_pc": "replay attack (a face shown on a computer screen)",
    "replay_pad": "replay attack (a face shown on a tablet screen)",
    "replay_phone": "replay attack (a face shown on a phone screen)",
    "mask_paper": "paper mask attack (a printed paper mask worn over the face)",
    "mask_rigid": "rigid mask attack (a rigid plastic or resin mask)",
    "mask_silicone": "silicone mask attack (a flexible silicone mask)",
    "mask_3d": "3D mask attack",
    "mask_face": "face mask attack (a printed face mask)",
    "partial_eye": "partial attack (a printed eye region covering the eyes)",
    "partial_paperglasses": "partial attack (paper glasses with printed eyes)",
    "partial_mouth": "partial attack (a printed mouth region covering the mouth)",
}
CATEGORY_DESCRIPTIONS: dict[str, str] = {
    "print": "print attack",
    "replay": "replay attack (screen)",
    "mask": "mask attack",
    "makeup": "makeup attack",
    "partial": "partial attack",
    "other": "presentation attack",
}


def attack_description(spoof_type: str, attack_category: str) -> str:
    """What the hint calls this attack type; falls back on its family for types without their own text."""
    if spoof_type in ATTACK_DESCRIPTIONS:
        return ATTACK_DESCRIPTIONS[spoof_type]
    return CATEGORY_DESCRIPTIONS.get(attack_category, f"{spoof_type.replace('_', ' ')} attack")


def hint_sentence(spoof_type: str, attack_category: str) -> str:
    """H(I): the ground truth stated as a hint (Eq. 4). It exists only at annotation time."""
    return f"Hint: {attack_description(spoof_type, attack_category)}."


# ------------------------------------------------------------------------------- guidance (Eq. 5 and 6)


def guidance_sentence(tool: str, spoof_probability: float | None) -> str:
    """G[T_k(I)] of Eq. 5, in the words of section 3.1.2. ZoomInTool has no expert: only the first sentence."""
    first = f"This is the result of {tool}."
    if spoof_probability is None:
        return first
    return f"{first} The expert predicts {round(100 * spoof_probability)}% there's spoof trace."


def budget_sentence(tool_calls_left: int, turns_left: int) -> str:
    """Said with a tool result when the next turn must be the last one, so the teacher is not dropped for
    running past a limit it was never told about."""
    if tool_calls_left <= 0 or turns_left <= 1:
        return "No more tool calls are available: give your final answer in this turn."
    return ""


# ------------------------------------------------------------------- the annotator (Appendix A.2, S8)


def _tool_lines() -> str:
    return "\n".join(json.dumps(schema["function"], ensure_ascii=False) for schema in tool_schemas())


ANNOTATION_FORMAT = (
    "## Output Format\n"
    "Each of your replies is one turn: first your analysis inside <think></think>, then exactly one of\n"
    '- one tool call: <tool_call>{"name": <tool name>, "arguments": <JSON object>}</tool_call>\n'
    "- your conclusion: <answer><Real></answer> or <answer><Spoof></answer>\n"
    'Put the expectation of a tool request in its "expectation" argument. In your analysis, do not mention '
    "the hint, and do not quote the expert or its percentage: describe what you see.\n"
    "The tools, one JSON Schema per line:\n"
)


def annotation_system_prompt(max_tool_calls: int) -> str:
    """Figure S8 verbatim, then the output format, the tool limit and the tool schemas."""
    limit = f"You may call at most {max_tool_calls} tools in total.\n"
    return (
        tar_fas.ANNOTATION_SYSTEM_PROMPT
        + "\n\n"
        + ANNOTATION_FORMAT.replace("The tools,", limit + "The tools,")
        + _tool_lines()
    )


def annotation_query(hint: str) -> str:
    """Q + H(I) of Eq. 4 (the image comes first in the same user turn)."""
    return f"{tar_fas.ANNOTATION_QUERY} {hint}"


# --------------------------------------------------- knowledge transfer (paper 003 sec. 3.2.1, I-FAS)

KNOWLEDGE_TRANSFER_SYSTEM_PROMPT = (
    "## Role & Mission\n"
    "You are a face forensics expert. Your mission is to classify an image as either 'Real' or 'Spoof' by "
    "analyzing evidence strictly within the **facial region**, focusing only on physical presentation "
    "attacks (e.g., printed photos, screen displays, masks). You will be given a hint. Do not mention the "
    "hint. Your classification must match the hint and be supported by visible evidence.\n\n"
    "## Output Format\n"
    "Reply with the class token, then a concise explanation (two to four sentences) of the facial evidence "
    "for it, strictly as <Real><reason>...</reason> or <Spoof><reason>...</reason>."
)


def knowledge_transfer_query(hint: str) -> str:
    """The first-round query of Appendix B.1 with the hint: the teacher writes the stage-1 answer s^(0)."""
    return f"{tar_fas.FIRST_ROUND_QUERY} {hint}"


# --------------------------------------------------------------------------- captions (paper 002)

PRINT_REPLAY_INFORMATION = (
    "* printed photo:\n"
    "This type of spoofing attack involves taking a photograph of a real person, printing that photo, and "
    "then photographing the printed photo again.\n"
    "* replay:\n"
    "This type of spoofing attack involves taking a photograph of a real person, displaying that photo on a "
    "device's screen, and then photographing the displayed image again."
)
# Paper 002 describes only its datasets' two attacks; the others of the shared vocabulary get a line in the
# same style, so the "(Additional Information)" block covers the type actually shown.
EXTRA_INFORMATION: dict[str, str] = {
    "mask": "* mask:\nThis type of spoofing attack involves a person wearing a mask (paper, rigid or "
    "silicone) that shows another person's face.",
    "partial": "* partial:\nThis type of spoofing attack involves covering part of a real face (eyes or mouth) "
    "with a printed photo of that part.",
    "makeup": "* makeup:\nThis type of spoofing attack involves makeup applied to imitate or hide a face.",
}


def _additional_information(attack_category: str) -> str:
    extra = EXTRA_INFORMATION.get(attack_category)
    return PRINT_REPLAY_INFORMATION + (f"\n{extra}" if extra else "")


def vanilla_caption_messages_text(
    label: str, attack: str, attack_category: str, resolution: str
) -> tuple[str, str]:
    """(system, user) of paper 002, Figure 1, filled in for one image; `attack` is its hint description."""
    spoof = label == "spoof"
    given = (
        f"You are given a {label} image, its attack type ({attack}), and resolution ({resolution})."
        if spoof
        else (f"You are given a {label} image and resolution ({resolution}).")
    )
    trait = "'spoofing'" if spoof else "'liveness'"
    information = f"\n\n(Additional Information)\n{_additional_information(attack_category)}" if spoof else ""
    system = (
        "You are a face anti-spoofing analyst specializing in holistic pattern analysis.\n"
        f"Your task is to analyze and explain the characteristics that make the given image appear to be a {label} "
        "image.\n"
        f"{given}\n"
        f"However, respond as if you don't know whether the given image is live or spoof. Assume that the "
        f"conclusion that it's a {label} image is a result of your analysis.\n"
        "Also, the resolution of the given image will be referenced but not mentioned directly in the response.\n"
        "Be as detailed as possible in your response.\n"
        "Note: Reflections in eyeglasses, if present, are not indicators of spoofing. Do not analyze or reference "
        "reflections in your response. Focus on other critical characteristics, such as texture, lighting "
        f"consistency, depth map and other features that clearly indicate {trait}." + information
    )
    user = (
        f"Focus on the face in the image and explain the characteristics that indicate the given image represents "
        f"a {label} image.\n"
        "Disregard any reflections in glasses if present, as they are not indicative of spoofing. Do not mention "
        "or analyze any aspect of eyeglasses reflections in your response.\n"
        f"Analyze other aspects like texture, lighting, depth and other features that suggest "
        f"{'spoofing' if spoof else 'liveness'}.\n"
        "It is imperative to analyze exclusively and rigorously from the perspective of the face within the image. "
        "Disregard all other aspects of the image and focus solely on facial features and characteristics. "
        "Exclude information related **Background** and **Resolution**."
    )
    return system, user


REASONING_STEPS = (
    "1. Initial observation\n"
    "- Start with an overall assessment of the image, looking for irregularities or anomalies in facial features.\n"
    "2. Artifact detection\n"
    "- Look for visual artifacts such as blurriness, pixelation, or mismatched edges.\n"
    "3. Feature analysis\n"
    "- Examine specific facial features, such as eyes, nose, mouth, and skin texture, for signs of unnatural "
    "changes or inconsistencies.\n"
    "4. Examine lighting and shadows\n"
    "- Analyze the consistency of lighting, shadows, and reflections across the image to detect inconsistencies "
    "that could indicate manipulation.\n"
    "5. Consider context\n"
    "- Consider background information or context that may affect the authenticity of the image.\n"
    "6. Make a final judgment\n"
    "- Decide whether the image is real or spoofed."
)
# Not in Figure 3: headings that a validator can find without guessing at free-form prose.
STAGE_HEADING_RULE = "Write each step as a numbered heading with its name followed by a colon, e.g. '1. Initial observation: ...'."


def reasoning_caption_messages_text(label: str, attack_category: str) -> tuple[str, str]:
    """(system, user) of paper 002, Figure 3, filled in for one image (six stages, label-aware)."""
    spoof = label == "spoof"
    system = (
        "You are a seasoned forensic expert working in a high-tech AI lab specializing in facial forgery "
        "detection.\n"
        "You analyze facial images with precision, identifying subtle signs of manipulation and determining "
        "whether an image is real or a forgery. Your expertise is essential for training real-world AI systems "
        "used in high-value environments like security and digital authentication.\n"
        f"However, for this task, assume that you are only given {'a spoofed' if spoof else 'an unspoofed'} image and "
        f"that the conclusion that it is a {label} image is the result of your analysis.\n"
        "However, write your inference results as if you don't know whether the given image is live or spoofed. "
        "It is essential to base your analysis on the actual visible facial features in as much detail as "
        "possible.\n"
        "Note: Reflections involving the eyes should not be considered a factor in determining whether an image is "
        "real or spoofed. Do not mention or analyze any relevant aspects in your response. And the resolution of "
        "the given image will be referenced but not mentioned directly in the response."
    )
    user = (
        "Imagine you're a forensic investigator performing real-time facial image analysis. Find features that "
        f"indicate a given image is a {'spoofed' if spoof else 'real'} image. Then follow the steps below to make "
        f"detailed and reliable inferences as if you didn't know it was a {label} image:\n"
        f"{REASONING_STEPS}\n"
        "Note: Do not mention the features involved in the reflection and the resolution of the image directly in "
        f"your response. {STAGE_HEADING_RULE}\n\n"
        f"(Additional Information)\n{_additional_information(attack_category)}"
    )
    return system, user


# The stored training prompts: Figures 1 and 3's instructions with the label taken out (the model being
# trained must not be told the answer).
VANILLA_TRAINING_PROMPT = (
    "Focus on the face in the image and explain the characteristics that indicate whether the image represents "
    "a live or a spoof image. Analyze aspects like texture, lighting, depth and other features."
)
REASONING_TRAINING_PROMPT = (
    "Imagine you're a forensic investigator performing real-time facial image analysis. Decide whether the given "
    "image is a real or a spoofed image, following the steps below:\n" + REASONING_STEPS
)

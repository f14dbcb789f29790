"""A byte-level BPE tokenizer trained locally on the project's own prompt corpus.

It carries the real special tokens of Qwen2.5-VL (and InternVL3's image tokens), so that the processors,
TRL and vLLM treat it exactly as they treat the released tokenizers; only the merges are small.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from rft.prompts import tar_fas
from rft.prompts.chat_template import chat_template
from rft.tools import tool_schemas

# Qwen2.5's special tokens, in the order of the released vocabulary's added tokens.
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Added (non-special) tokens of Qwen2.5: they are kept whole when they appear in text.
QWEN_ADDED_TOKENS = ["<tool_call>", "</tool_call>"]
# The tiny tokenizer's own added tokens: paper 003's tags, answer tokens and the fixed parts of a Hermes tool
# call, each kept whole. Byte-level BPE cannot merge across its pre-tokenizer's splits, so `{"name": "` stays
# four tokens, and after its ` "` a 2 M-parameter model wrote `arguments` as often as a tool name (greedy
# stage-2 episodes, docs/EFFICACY.md); as one token, what follows it is always a tool name. Real checkpoints
# keep their own tokenizers: this is the demo model's choice, not the protocol's.
PROTOCOL_ADDED_TOKENS = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "<reason>",
    "</reason>",
    "<Real>",
    "<Spoof>",
    '{"name": "',
    '", "arguments": {',
    # A reasoning turn's one decision, call or answer, as one token: alone, the newline after `</think>`
    # was followed by `<tool_call>` or `<answer>` and the newline after `<tool_call>` by the JSON, and the
    # model skipped `<tool_call>` in a quarter of its calls.
    '</think>\n<tool_call>\n{"name": "',
    "</think>\n<answer>",
]
INTERNVL_SPECIAL_TOKENS = [
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<quad>",
    "</quad>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    "<video>",
]
# InternVLProcessor reads these named tokens off the tokenizer, as on the released InternVL3-hf.
INTERNVL_NAMED_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}

_TOOLS = ["ZoomIn", "FFT", "LBP", "WaveletTransform", "EdgeDetection", "HOG"]
_CUES = [
    "moire patterns",
    "screen glare",
    "print texture",
    "halftone dots",
    "paper surface noise",
    "unnatural flatness",
    "rigid expression",
    "mask boundary seams",
    "natural skin texture",
    "consistent 3D shading",
    "specular highlights on the skin",
    "periodic peaks in the spectrum",
    "uniform LBP codes",
    "sharp edges along the cut-out",
]
# The words of face-forensics evidence that short analyses are made of (the templated writer's among them,
# rft.annotate.templated): with a merge for each, a sentence costs about one token a word.
FAS_WORDS = (
    "a ambiguous and are around as at attack behind border break brightly check close color colors conclusive "
    "cover covers cross curve curves cut-out detail different differs dim dot dots dull edge edges even evenly "
    "eyes face faint fake falls features fine flat follow follows for frame frames fringes from glossy "
    "gradients grid halftone heavy here if in ink irregular is it jaw lies like lines lit look looks makeup "
    "mask missing moire muted natural near next no noise nose not of off off-axis on one or out outline over "
    "paper part partial pasted patch pattern peaks periodic photo pixel pores presentation print printed "
    "random real recaptured region regular repeats replay result rigid ripple runs scene screen seam seams "
    "shading sharp show shows skin smooth smoothly so spectrum spoof stiff straight surface synthetic texture "
    "the there this tones too uniform unusual up view washed will with zoom I So It The There This"
)
# How often the protocol's own strings are repeated in the corpus, so that their merges win over the long
# prompt texts' and a tool call, a tag or a tool name costs a few tokens.
PROTOCOL_REPEATS = 40


def protocol_texts() -> Iterator[str]:
    """The exact strings of paper 003's episode format: the turn frames and a Hermes call of every tool, as
    rft.annotate.verify.canonical_turn renders them."""
    for tool in (f"{name}Tool" for name in _TOOLS):
        call = {"name": tool, "arguments": {"expectation": "if fake"}}
        yield f"<think>I will check.</think>\n<tool_call>\n{json.dumps(call)}\n</tool_call>"
    yield '"bbox": [12, 34, 56, 78], "expectation": ""}}'
    for token in ("<Real>", "<Spoof>"):
        yield f"{token}<reason>The face looks real.</reason>"
        yield f"<think>So the face is real.</think>\n<answer>{token}</answer>"
    yield FAS_WORDS


def prompt_corpus(seed: int = 0, explanations: int = 400, schemas: bool = True) -> Iterator[str]:
    """The texts the tokenizer learns from: every prompt of the project, the tool schemas (unless they are
    added tokens), the episode format's own strings and templated FAS explanations."""
    yield from (
        tar_fas.SYSTEM_PROMPT,
        tar_fas.FIRST_ROUND_QUERY,
        tar_fas.TOOL_GUIDANCE,
        tar_fas.FORMAT_DECLARATION,
        tar_fas.ANNOTATION_SYSTEM_PROMPT,
        tar_fas.ANNOTATION_QUERY,
        chat_template("qwen2_5_vl"),
    )
    if schemas:
        # The system turn carries every tool's JSON schema; learning it keeps episodes inside the context.
        for schema in tool_schemas():
            yield "\n" + json.dumps(schema)
    for _ in range(PROTOCOL_REPEATS):
        yield from protocol_texts()
    rng = random.Random(seed)
    for _ in range(explanations):
        label, cue, tool = rng.choice(["Real", "Spoof"]), rng.choice(_CUES), rng.choice(_TOOLS)
        x0, y0 = rng.randrange(0, 112), rng.randrange(0, 112)
        yield (
            f"<{label}><reason>The face shows {cue}.</reason>"
            f"<think>I should check for {rng.choice(_CUES)} with the {tool} tool.</think>\n"
            f'<tool_call>\n{{"name": "{tool}", "arguments": {{"bbox": [{x0}, {y0}, {x0 + 112}, {y0 + 112}]}}}}\n'
            f"</tool_call>"
        )
        yield f"<think>The {tool} result shows {cue}.</think> <answer><{label}></answer>"
        yield f"<thinking>The image shows {cue}.</thinking><answer>{rng.choice(['real', 'fake'])}</answer>"


def tool_schema_tokens() -> list[str]:
    """Each tool's JSON schema exactly as the chat template renders it in the system turn (`tool | tojson`)."""
    return [json.dumps(schema, ensure_ascii=False) for schema in tool_schemas()]


def train_tokenizer(
    arch: str, vocab_size: int = 2048, seed: int = 0, whole_schemas: bool = False
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `prompt_corpus` and wrap it with the architecture's special tokens.

    `whole_schemas` makes each tool schema one added token: the system turn shrinks from ~1,080 tokens to
    ~180, the same text in every episode of an arm, and which tools it offers still shows (one token each).
    The test models use it (the suite's training and rollouts run on ~3x shorter sequences); the demo model
    does not: with it, the demo took half the time but GRPO no longer raised the reward and the correct
    answers in 24 steps (docs/EFFICACY.md, "A one-token system turn")."""
    internvl = arch == "internvl3"
    special = QWEN_SPECIAL_TOKENS + (INTERNVL_SPECIAL_TOKENS if internvl else [])
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The corpus is repeated so that merges of rarer prompt words still reach min_frequency.
    corpus = list(prompt_corpus(seed, schemas=not whole_schemas))
    bpe.train_from_iterator(itertools.chain(corpus, corpus), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=special[3:],
        extra_special_tokens=INTERNVL_NAMED_TOKENS if internvl else None,
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
        padding_side="left",
    )
    tokenizer.add_tokens(
        QWEN_ADDED_TOKENS + PROTOCOL_ADDED_TOKENS + (tool_schema_tokens() if whole_schemas else [])
    )
    tokenizer.chat_template = chat_template(arch)
    return tokenizer

"""Parser of paper 001's single-turn response: <thinking>...</thinking><answer>real|fake</answer>.

Paper 001 ("Verifiable Rewards for Face Anti-Spoofing") asks for the reasoning inside <thinking></thinking>
and the class inside <answer></answer>, and "define[s] the ground truth classes as real and fake". Choices
where the paper is silent (docs/REWARDS.md):

- Format (Eq. 3): exactly one <thinking> block then exactly one <answer> block, nothing but whitespace
  around and between them; the answer is exactly `real` or `fake`: lower case (the paper's spelling), no
  surrounding whitespace. Anything else, `Real` included, does not match the format.
- Class (Eq. 4): the paper extracts P_class from the <answer> block independently of the format, so
  `predicted` is read whenever the text holds exactly one <answer>...</answer> pair whose content is exactly
  `real` or `fake`, even if other parts of the format are wrong; two answer blocks give no class (no
  hedging). The format and class rewards stay separate signals, as in the paper's ablation (Table 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from rft.parsing.blocks import clip, match_blocks, scan_tags, tag_pattern
from rft.parsing.labels import Label

BLOCKS = ("thinking", "answer")
CLASS_BY_ANSWER: dict[str, Label] = {"real": "live", "fake": "spoof"}

_TAGS = tag_pattern(BLOCKS)
_ANSWER_TAGS = tag_pattern(["answer"])


@dataclass(frozen=True, slots=True)
class ThinkAnswer:
    """A parsed paper-001 response. `error` says why the format does not match (None when it does)."""

    format_ok: bool
    predicted: Label | None
    thinking: str | None
    error: str | None


def _answer_class(content: str) -> tuple[Label | None, str | None]:
    if content in CLASS_BY_ANSWER:
        return CLASS_BY_ANSWER[content], None
    return None, f"answer must be exactly 'real' or 'fake', got {clip(content)}"


def _lone_answer_class(text: str) -> Label | None:
    """The class in the text's only <answer>...</answer> pair, whatever surrounds it (Eq. 4's P_class)."""
    tags = scan_tags(text, _ANSWER_TAGS, max_blocks=1)
    if [tag.group() for tag in tags] != ["<answer>", "</answer>"]:
        return None
    return CLASS_BY_ANSWER.get(text[tags[0].end() : tags[1].start()])


def parse_think_answer(text: str) -> ThinkAnswer:
    """Parse a paper-001 completion; never raises."""
    if not isinstance(text, str):
        return ThinkAnswer(False, None, None, f"expected text, got {type(text).__name__}")
    contents, error = match_blocks(text, scan_tags(text, _TAGS, len(BLOCKS)), BLOCKS)
    if contents is None:
        return ThinkAnswer(False, _lone_answer_class(text), None, error)
    thinking, answer = contents
    predicted, error = _answer_class(answer)
    return ThinkAnswer(error is None, predicted, thinking, error)

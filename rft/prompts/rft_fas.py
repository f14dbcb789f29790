"""Paper 001's task prompt.

Paper 001 shows its prompt only as a figure (Figure 2); this wording asks for exactly the format its rewards
check (rft.parsing.rft_fas: <thinking>...</thinking><answer>real|fake</answer>)."""

from __future__ import annotations

from rft.prompts.episodes import IMAGE_PART, Message, text_part

RFT_FAS_QUESTION = (
    "Is the face in this image real or fake? First think about it and write your reasoning inside "
    "<thinking> </thinking> tags, then give the final answer, exactly real or fake, inside <answer> </answer> tags."
)


def rft_fas_messages(question: str = RFT_FAS_QUESTION) -> list[Message]:
    """Paper 001's prompt: the face image and the question, in one user turn."""
    return [{"role": "user", "content": [IMAGE_PART, text_part(question)]}]

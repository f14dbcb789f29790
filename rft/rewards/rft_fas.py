"""Paper 001's verifiable rewards (section "Verifiable Rewards for Face Anti-Spoofing", Eq. 3-6).

    R_format = 1 if the response matches <thinking>...</thinking><answer>...</answer>, else 0    (Eq. 3)
    R_cls    = 1 if P_class = G_class, else 0                                                     (Eq. 4)
    R_res    = +min(1, len(o_i) / L) if P_class = G_class, else -min(1, len(o_i) / L)             (Eq. 5)
    R_all    = R_format + R_cls + R_res                                                           (Eq. 6)

len(o_i) is the response's length in tokens of the policy tokenizer, counted by the caller (the TRL adapter
uses the completion's token ids). L = 1200 (implementation details). A response whose class cannot be read
has P_class undefined, which is not G_class: it counts as incorrect in Eq. 4 and Eq. 5.
"""

from __future__ import annotations

from dataclasses import dataclass

from rft.parsing.labels import Label, as_label
from rft.parsing.rft_fas import ThinkAnswer, parse_think_answer

DEFAULT_MAX_LENGTH = 1200


@dataclass(frozen=True, slots=True)
class RftFasCoefficients:
    """Weights of the three rewards in R_all (all 1 in Eq. 6; 0 reproduces a Table 3 ablation) and L."""

    format_weight: float = 1.0
    cls_weight: float = 1.0
    res_weight: float = 1.0
    max_length: int = DEFAULT_MAX_LENGTH

    def __post_init__(self) -> None:
        if self.max_length <= 0:
            raise ValueError(f"max_length (L of Eq. 5) must be positive, got {self.max_length}")


PAPER_COEFFICIENTS = RftFasCoefficients()


@dataclass(frozen=True, slots=True)
class RftFasReward:
    """Every component of R_all for one response, and the weighted total."""

    format: float
    cls: float
    res: float
    total: float


def format_reward(parsed: ThinkAnswer) -> float:
    """R_format, Eq. 3: 1 if the response matches the format, else 0."""
    return 1.0 if parsed.format_ok else 0.0


def is_correct(predicted: Label | None, label: Label) -> bool:
    """P_class = G_class; an unreadable class (None) is never correct."""
    return predicted is not None and predicted == label


def class_reward(predicted: Label | None, label: Label) -> float:
    """R_cls, Eq. 4: 1 if the predicted class equals the ground truth, else 0."""
    return 1.0 if is_correct(predicted, label) else 0.0


def reasoning_consistency_reward(
    correct: bool, num_tokens: int, max_length: int = DEFAULT_MAX_LENGTH
) -> float:
    """R_res, Eq. 5: +min(1, len/L) when correct, -min(1, len/L) when not (len in tokens, L = max_length)."""
    if num_tokens < 0:
        raise ValueError(f"num_tokens must be >= 0, got {num_tokens}")
    magnitude = min(1.0, num_tokens / max_length)
    return magnitude if correct else -magnitude


def rft_fas_reward(
    text: str, label: Label, num_tokens: int, coefficients: RftFasCoefficients = PAPER_COEFFICIENTS
) -> RftFasReward:
    """R_all, Eq. 6 (weighted by `coefficients`, all 1 by default), with its components.

    `label` is 'live' or 'spoof' (or the dataset's 0 / 1); `num_tokens` is len(o_i) in policy tokens.
    """
    label = as_label(label)
    parsed = parse_think_answer(text)
    format_ = format_reward(parsed)
    cls = class_reward(parsed.predicted, label)
    res = reasoning_consistency_reward(
        is_correct(parsed.predicted, label), num_tokens, coefficients.max_length
    )
    total = (
        coefficients.format_weight * format_ + coefficients.cls_weight * cls + coefficients.res_weight * res
    )
    return RftFasReward(format=format_, cls=cls, res=res, total=total)

"""Paper 000's feature statistic and objectives as plain tensor functions (each checked by hand-worked
numbers in tests/baselines/test_instructflip_losses.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

STD_EPS = 1e-6  # inside the square root, so the std of identical tokens has a finite gradient


def style_feature(layer_tokens: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 1: f_s = s_1 (+) s_2 (+) ... (+) s_L with s_i = mu_i (+) sigma_i, the mean and the standard
    deviation over the tokens of layer i (Sec. 3.2: f_s in R^{2L x d}). Each entry of `layer_tokens` is
    (batch, tokens, d); the result is (batch, 2L, d), rows mu_1, sigma_1, mu_2, sigma_2, ... The deviation
    is the population one (AdaIN's statistic), sqrt(var + STD_EPS)."""
    rows = []
    for tokens in layer_tokens:
        rows.append(tokens.mean(dim=1))
        rows.append(torch.sqrt(tokens.var(dim=1, unbiased=False) + STD_EPS))
    return torch.stack(rows, dim=1)


def cue_loss(predicted: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Eq. 7, per pixel with d = |p_cue - y_mask|: 0.5 d^2 / beta where d < beta (L2), d - 0.5 beta elsewhere
    (L1); the mean over pixels and samples. The 0.5 makes the two pieces meet at d = beta (the paper's text
    loses it; this is the smooth-L1 it cites)."""
    d = (predicted - target).abs()
    return torch.where(d < beta, 0.5 * d**2 / beta, d - 0.5 * beta).mean()


def cue_target(is_spoof: torch.Tensor, size: int) -> torch.Tensor:
    """Sec. 3.4: an all-white (1) map for a spoof, an all-blank (0) map for a live face; (batch, 1, size, size)."""
    return is_spoof.float().view(-1, 1, 1, 1).expand(-1, 1, size, size)


LOSS_TERMS = ("content", "style", "cls", "cue")


def total_loss(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Eq. 6: L = lambda_1 L_c + lambda_2 L_s + lambda_3 L_cls + lambda_4 L_cue, over the terms present (an
    ablated branch has no term). `weights` maps each term of LOSS_TERMS to its lambda."""
    unknown = set(terms) - set(LOSS_TERMS)
    if unknown:
        raise ValueError(f"unknown loss terms {sorted(unknown)}; expected some of {LOSS_TERMS}")
    if not terms:
        raise ValueError("no loss terms: every branch, the classifier and the cue are off")
    return torch.stack([weights[name] * value for name, value in terms.items()]).sum()

"""Paper 000's definitions against hand-worked numbers: the style statistic (Eq. 1), the cue loss's L1/L2
switch (Eq. 7), its targets (Sec. 3.4), the loss weighting (Eq. 6), and the instructions' labels (Table 1)."""

from __future__ import annotations

import pytest
import torch

from rft.baselines.instructflip.config import InstructFlipConfig
from rft.baselines.instructflip.losses import cue_loss, cue_target, style_feature, total_loss
from rft.baselines.instructflip.questions import CONTENT, content_index, row_answers, style_index
from rft.baselines.instructflip.train import loss_weights


def test_style_feature_concatenates_each_layers_mean_and_std():
    # Layer 1: tokens (1, 3) and (3, 5): mean (2, 4), population variance (1, 1) -> std (1, 1).
    # Layer 2: tokens (0, 0) and (4, -2): mean (2, -1), variance (4, 1) -> std (2, 1).
    layer1 = torch.tensor([[[1.0, 3.0], [3.0, 5.0]]])
    layer2 = torch.tensor([[[0.0, 0.0], [4.0, -2.0]]])
    f_s = style_feature([layer1, layer2])
    assert f_s.shape == (1, 4, 2)  # 2L x d
    expected = torch.tensor([[[2.0, 4.0], [1.0, 1.0], [2.0, -1.0], [2.0, 1.0]]])
    torch.testing.assert_close(f_s, expected, atol=1e-5, rtol=0)


def test_style_feature_of_identical_tokens_has_a_finite_gradient():
    tokens = torch.ones(1, 3, 2, requires_grad=True)
    style_feature([tokens]).sum().backward()
    assert torch.isfinite(tokens.grad).all()


def test_cue_loss_is_l2_below_beta_and_l1_from_beta():
    predicted = torch.tensor([0.2, 0.9, 0.5, 0.0])
    target = torch.tensor([0.0, 0.0, 1.0, 1.0])
    # d = 0.2, 0.9, 0.5, 1.0 with beta 0.5: 0.5 * 0.04 / 0.5 = 0.04 (L2); 0.9 - 0.25 = 0.65; at d = beta the
    # L1 branch: 0.5 - 0.25 = 0.25; 1.0 - 0.25 = 0.75. Mean: 1.69 / 4.
    assert cue_loss(predicted, target, beta=0.5).item() == pytest.approx(1.69 / 4)
    # The two branches meet at d = beta (0.5 * beta on both sides).
    below, above = torch.tensor([0.5 - 1e-6]), torch.tensor([0.5])
    assert cue_loss(below, torch.zeros(1), 0.5).item() == pytest.approx(0.25, abs=1e-5)
    assert cue_loss(above, torch.zeros(1), 0.5).item() == pytest.approx(0.25)


def test_cue_targets_are_white_for_spoof_and_blank_for_live():
    maps = cue_target(torch.tensor([1, 0]), size=3)
    assert maps.shape == (2, 1, 3, 3)
    assert maps[0].eq(1).all() and maps[1].eq(0).all()


def test_total_loss_weights_the_terms_as_eq_6():
    weights = loss_weights(InstructFlipConfig(tiny=True))
    assert weights == {"content": 0.4, "style": 0.4, "cls": 0.15, "cue": 0.05}
    terms = {
        "content": torch.tensor(2.0),
        "style": torch.tensor(1.0),
        "cls": torch.tensor(4.0),
        "cue": torch.tensor(10.0),
    }
    # 0.4 * 2 + 0.4 * 1 + 0.15 * 4 + 0.05 * 10 = 0.8 + 0.4 + 0.6 + 0.5
    assert total_loss(terms, weights).item() == pytest.approx(2.3)
    del terms["style"]  # an ablated branch contributes nothing
    assert total_loss(terms, weights).item() == pytest.approx(1.9)
    with pytest.raises(ValueError, match="unknown loss terms"):
        total_loss({"caption": torch.tensor(1.0)}, weights)


def test_content_answers_cover_the_eleven_options_and_fold_other_attacks():
    assert len(CONTENT.options) == 11
    assert content_index("live") == 0
    assert content_index("replay_phone") == CONTENT.options.index("Phone screen")
    assert content_index("print", {"fine_spoof_type": "print_a4"}) == CONTENT.options.index("A4-paper")
    assert content_index("mask_silicone") == CONTENT.options.index("3D mask")
    assert content_index("makeup_cosmetic") is None


def test_unannotated_attributes_carry_no_label():
    # CelebA-Spoof leaves a live image's illumination and environment at 0 (the importer's None).
    row = {
        "spoof_type": "live",
        "illumination": None,
        "environment": None,
        "camera_quality": None,
        "meta": "{}",
    }
    assert row_answers(row) == {
        "content": 0,
        "illumination": None,
        "environment": None,
        "camera_quality": None,
    }
    assert style_index("camera_quality", "middle") == style_index("camera_quality", "Medium") == 1
    assert style_index("illumination", "Back") == 2

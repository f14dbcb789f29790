"""The expert CNN of Figure S9 and what it is fed (paper 003, Appendix A.3, Eq. 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from rft.experts.inputs import EXPERT_TOOLS, check_expert_tool, expert_input, random_arguments, tool_picture
from rft.experts.model import ExpertArchitecture, ExpertCNN
from rft.tools import TOOL_NAMES, validate_arguments


def test_every_tool_but_zoom_has_an_expert():
    assert set(EXPERT_TOOLS) == set(TOOL_NAMES) - {"ZoomInTool"}
    with pytest.raises(ValueError, match="no expert for tool 'ZoomInTool'"):
        check_expert_tool("ZoomInTool")


@pytest.mark.parametrize("size, channels", [(32, (4, 8)), (64, (8, 16, 32, 64)), (112, (8, 16, 32, 64))])
def test_cnn_maps_a_batch_of_pictures_to_one_logit_each(size, channels):
    model = ExpertCNN(ExpertArchitecture(input_size=size, channels=channels, hidden=16))
    logits = model(torch.zeros(3, 1, size, size))
    assert logits.shape == (3,)
    assert torch.isfinite(logits).all()


def test_cnn_keeps_where_a_response_sits():
    """Flattened (not globally pooled) features: moving a peak changes the features, which is what lets an
    FFT expert read frequency from position."""
    model = ExpertCNN(ExpertArchitecture(input_size=32, channels=(4, 8), hidden=8, dropout=0.0)).eval()
    left, right = torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32)
    left[..., 8, 4], right[..., 8, 27] = 5.0, 5.0
    with torch.no_grad():
        assert not torch.allclose(model.features(left).flatten(), model.features(right).flatten())


def test_architecture_rejects_a_size_the_pooling_cannot_halve():
    with pytest.raises(ValidationError, match="divisible by 2\\*\\*4"):
        ExpertArchitecture(input_size=100, channels=(8, 16, 32, 64))


def test_expert_input_is_grey_resized_and_standardised():
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (90, 90, 3), dtype=np.uint8)
    values = expert_input(picture, 32)
    assert values.shape == (32, 32) and values.dtype == np.float32
    assert abs(values.mean()) < 1e-4 and abs(values.std() - 1) < 1e-3


def test_expert_input_of_a_flat_picture_is_finite():
    assert np.isfinite(expert_input(np.full((40, 40, 3), 7, np.uint8), 40)).all()


@pytest.mark.parametrize("tool", EXPERT_TOOLS)
def test_random_arguments_are_valid_calls_that_run(tool):
    rng = np.random.default_rng(3)
    image = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for _ in range(20):
        arguments = random_arguments(tool, rng)
        validate_arguments(tool, arguments)
        assert tool_picture(tool, image, arguments).shape == (64, 64, 3)

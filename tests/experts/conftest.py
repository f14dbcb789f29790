"""Fixtures of the expert tests: toy pictures whose classes differ the way FFT pictures of a recapture and
of a face do. The tiny synthetic benchmark is suite-wide (tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from rft.experts.data import ToolPictures
from rft.experts.inputs import expert_input


def toy_pictures(n: int, size: int, seed: int) -> ToolPictures:
    """Half 'spoof' pictures (noise plus two bright off-centre peaks, like a moire spectrum), half 'live'
    (noise only), standardised like real expert inputs; two attack types, two domains."""
    rng = np.random.default_rng(seed)
    inputs, labels = [], []
    for index in range(n):
        picture = rng.normal(100, 20, (size, size)).clip(0, 255)
        spoof = index % 2
        if spoof:
            row, col = rng.integers(2, size // 2 - 2, size=2)
            picture[row - 1 : row + 2, col - 1 : col + 2] = 255
            picture[size - row - 2 : size - row + 1, size - col - 2 : size - col + 1] = 255
        inputs.append(expert_input(picture.astype(np.uint8), size))
        labels.append(spoof)
    labels = np.asarray(labels)
    types = np.where(labels == 1, np.where(np.arange(n) % 4 == 1, "replay", "print"), "live")
    return ToolPictures(
        inputs=np.stack(inputs),
        labels=labels,
        spoof_types=types,
        domains=np.where(np.arange(n) % 3 == 0, "street", "studio"),
        subjects=np.asarray([f"s{i // 4}" for i in range(n)]),
        sample_ids=np.asarray([f"toy-{i}" for i in range(n)]),
    )


@pytest.fixture(scope="session")
def toy_split() -> tuple[ToolPictures, ToolPictures]:
    return toy_pictures(192, 32, seed=1), toy_pictures(96, 32, seed=2)

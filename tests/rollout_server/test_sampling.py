"""What the sampler lets through to vLLM's engine (rollout_server.sampling.check_settings), without an engine:
vLLM's engine process decodes requests against exact types, and a bool seed once stopped it (issue #14)."""

from __future__ import annotations

import pytest

from rft.rollout.episode import SamplingSettings
from rollout_server.sampling import check_settings


@pytest.mark.parametrize(
    ("n", "settings", "error"),
    [
        (1, SamplingSettings(seed=True), "seed must be int, got bool"),
        (True, SamplingSettings(), "n must be int, got bool"),
        (1, SamplingSettings(max_tokens=12.0), "max_tokens must be int, got float"),
        (1, SamplingSettings(max_tokens="12"), "max_tokens must be int, got str"),
        (1, SamplingSettings(temperature=float("nan")), r"temperature must be in \[0.0, 2.0\], got nan"),
        (1, SamplingSettings(top_p="1"), "top_p must be float, got str"),
        (1, SamplingSettings(seed=2**31), r"seed must be in \[0, 2147483647\]"),
        (1, SamplingSettings(seed=-1), r"seed must be in \[0, 2147483647\]"),
        (1, SamplingSettings(ignore_eos=1), "ignore_eos must be bool, got int"),
        (0, SamplingSettings(), r"n must be in \[1, 2147483647\], got 0"),
    ],
)
def test_settings_the_engine_cannot_take_are_refused(n: int, settings: SamplingSettings, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        check_settings(n, settings)


def test_good_settings_pass() -> None:
    check_settings(4, SamplingSettings(max_tokens=8, temperature=1, top_p=0.9, seed=0, ignore_eos=True))
    check_settings(1, SamplingSettings(temperature=0.0, seed=2**31 - 1))

"""Scored rows shared by the tests of the metrics report and of `rft metrics`."""

from __future__ import annotations

import pytest

# Two domains. A: live 0.1 0.4, spoof 0.35 (print) 0.8 (replay). B: live 0.2 0.3 0.5, spoof 0.7 0.9 (print).
DOMAIN_ROWS = [
    {"id": "a1", "score": 0.1, "label": "live", "domain": "A"},
    {"id": "a2", "score": 0.4, "label": "live", "domain": "A"},
    {"id": "a3", "score": 0.35, "label": "spoof", "attack_type": "print", "domain": "A"},
    {"id": "a4", "score": 0.8, "label": "spoof", "attack_type": "replay", "domain": "A"},
    {"id": "b1", "score": 0.2, "label": "live", "domain": "B"},
    {"id": "b2", "score": 0.3, "label": "live", "domain": "B"},
    {"id": "b3", "score": 0.5, "label": "live", "domain": "B"},
    {"id": "b4", "score": 0.7, "label": "spoof", "attack_type": "print", "domain": "B"},
    {"id": "b5", "score": 0.9, "label": "spoof", "attack_type": "print", "domain": "B"},
]


@pytest.fixture
def domain_rows() -> list[dict]:
    """DOMAIN_ROWS, a fresh copy per test."""
    return [dict(row) for row in DOMAIN_ROWS]

"""In-process mode: the same episode code without HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from protocol_model import ANSWER, CALL, FAST

# The first test also waits for the session's protocol model and a vLLM start-up.
pytestmark = pytest.mark.timeout(1800)

HERE = Path(__file__).parent


def test_inprocess_mode_runs_the_same_episodes(protocol_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "episodes.json"
    script = HERE / "inprocess_episodes.py"
    subprocess.run([sys.executable, str(script), str(protocol_model_dir), str(out)], check=True, timeout=900)
    result = json.loads(out.read_text())
    answered = [e for e in result["episodes"] if e["stop_reason"] == "answer"]
    assert answered, result["episodes"]
    for episode in answered:
        assert episode["turns"] == [FAST, CALL, ANSWER]
        assert episode["tools"] == ["FFTTool"] and episode["n_images"] == 2
        assert 0 < sum(episode["mask"]) < len(episode["mask"])
    # close() stops vLLM's output handler before the engine: no EngineDeadError traceback after a good run.
    assert result["handler_done_at_shutdown"] == [True]

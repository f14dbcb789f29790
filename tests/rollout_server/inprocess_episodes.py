"""Run as a script (vLLM spawns its engine core): episodes through `InProcessRollouts`, written as JSON for
tests/rollout_server/test_inprocess.py."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

if __name__ == "__main__":
    from protocol_model import protocol_image

    from reward_service import InProcessRewards
    from rft.rollout.sampling import Sampling
    from rollout_server.inprocess import InProcessRollouts

    model_dir, out_path = sys.argv[1], sys.argv[2]
    rollouts = InProcessRollouts(model_dir, tools=InProcessRewards())
    groups, version = rollouts.episodes([protocol_image(7)], n=2, sampling=Sampling(max_tokens=64))
    records = [
        {
            "turns": e.turns,
            "stop_reason": e.stop_reason,
            "mask": e.mask,
            "n_images": len(e.images),
            "tools": [c.name for c in e.tool_calls],
        }
        for e in groups[0]
    ]
    rollouts.close()
    Path(out_path).write_text(json.dumps({"version": version, "episodes": records}))

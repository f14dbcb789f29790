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
    # Whether vLLM's output handler had ended when the engine's shutdown began: one still reading then takes
    # the engine core's exit for a failure and logs an EngineDeadError traceback.
    handler = rollouts.sampler.engine.output_handler
    engine_shutdown = rollouts.sampler.shutdown
    handler_done_at_shutdown = []

    def recording_shutdown() -> None:
        handler_done_at_shutdown.append(handler.done())
        engine_shutdown()

    rollouts.sampler.shutdown = recording_shutdown
    rollouts.close()
    Path(out_path).write_text(
        json.dumps(
            {"version": version, "episodes": records, "handler_done_at_shutdown": handler_done_at_shutdown}
        )
    )

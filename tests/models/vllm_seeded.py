"""Run as a script (vLLM spawns its engine core): seeded sampling of many long prompts at once, twice, through
the rollout server's `VLLMSampler` (vLLM's AsyncLLM, whose defaults chunk long prefills); writes whether both
passes sampled the same tokens. Prompts split over scheduling steps made vLLM's CPU worker rewind a CPU
torch.Generator, which it cannot ("CPU Generator does not use offset"), and the engine died."""

import asyncio
import json
import sys

if __name__ == "__main__":
    from rft.rollout.episode import SamplingSettings
    from rollout_server.sampling import VLLMSampler

    model_dir, out_path = sys.argv[1], sys.argv[2]
    sampler = VLLMSampler(model_dir, max_model_len=2048)
    prompts = [[(7 * i + 13 * j) % 1500 + 100 for j in range(1500 + i)] for i in range(12)]

    async def sample() -> list[list[int]]:
        runs = [
            sampler.sample(ids, [], n=1, settings=SamplingSettings(8, 1.0, 1.0, 1000 + i, False))
            for i, ids in enumerate(prompts)
        ]
        return [list(completions[0].token_ids) for completions in await asyncio.gather(*runs)]

    async def both() -> tuple[list[list[int]], list[list[int]]]:
        return await sample(), await sample()

    first, second = asyncio.run(both())
    sampler.shutdown()
    with open(out_path, "w") as handle:
        json.dump({"first": first, "same": first == second}, handle)

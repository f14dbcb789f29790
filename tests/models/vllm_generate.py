"""Run as a script (vLLM spawns its engine core, so it needs a __main__ guard): sample n completions with
logprobs for a few image prompts and write them to a JSON file for tests/models/test_vllm_engine.py."""

import json
import sys

import numpy as np
from PIL import Image

if __name__ == "__main__":
    from vllm import LLM, SamplingParams

    from rft.models.vllm_engine import engine_kwargs

    model_dir, out_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    llm = LLM(**engine_kwargs(model_dir, max_model_len=1024))
    rng = np.random.default_rng(0)
    images = [Image.fromarray((rng.random((224, 224, 3)) * 255).astype("uint8")) for _ in range(2)]
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this real?"}]}]
    prompt = llm.get_tokenizer().apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    requests = [{"prompt": prompt, "multi_modal_data": {"image": image}} for image in images]
    params = SamplingParams(n=n, max_tokens=12, temperature=1.0, logprobs=0, seed=0)
    results = []
    for output in llm.generate(requests, params):
        completions = []
        for completion in output.outputs:
            chosen = [
                step[token].logprob
                for step, token in zip(completion.logprobs, completion.token_ids, strict=True)
            ]
            completions.append({"token_ids": list(completion.token_ids), "logprobs": chosen})
        results.append({"prompt_token_ids": list(output.prompt_token_ids), "completions": completions})
    with open(out_path, "w") as handle:
        json.dump(results, handle)

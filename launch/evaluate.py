"""Score checkpoints on a protocol's target domains: `python launch/evaluate.py --config NAME --model DIR [--model DIR ...] [key=value ...]`.

Each checkpoint (a plain Hugging Face folder, e.g. runs/demo_cpu/sft_stage2/model or runs/demo_cpu/grpo/model)
is evaluated as the demo and GRPO evaluate: HTER and AUC per target domain of data.protocol, for the fast
answer (first turn; when grpo.method has one) and the final answer (after greedy tool calls, every tool run
for real; when eval.final_answer is true), both scored by P(Spoof) over the Real/Spoof answer tokens (paper
003). One vLLM engine in this process serves every checkpoint (rollout.mode and rollout.urls are not used),
so all of them must share the first one's architecture, tokenizer and weight shapes. The config gives the
protocol and data (data.*), the episodes (grpo.method, grpo.max_tool_calls, grpo.max_completion_length,
run.tool_names, run.seed, rollout.max_model_len, reward_service.url), the evaluation (eval.*) and the dtype
(model.dtype). Writes every checkpoint's reports to --out (default run.output_dir/run.name/evaluation.json),
rewritten after each checkpoint; an existing file is kept unless --overwrite.

example: the demo's stage-2 and GRPO models on 1,000 fresh faces of the unseen street domain (generated on
first use; docs/EFFICACY.md, "The unseen AUC on 1,000 fresh street faces"):
  python launch/evaluate.py --config demo_cpu --model runs/demo_cpu/sft_stage2/model \\
      --model runs/demo_cpu/grpo/model data.protocol=synth_street_all data.synthetic.n_per_domain=1000 \\
      data.synthetic.seed=7
"""

from __future__ import annotations

import sys

from rft.errors import run_command
from rft.jobs import evaluate


def main(argv: list[str] | None = None) -> int:
    def job() -> int:
        args = evaluate.parser(__doc__).parse_args(argv)
        config, model_dirs, out = evaluate.request_from(args)
        evaluate.run(config, model_dirs, out)
        print(f"evaluation done; metrics: {out}")
        return 0

    return run_command(job)


if __name__ == "__main__":
    sys.exit(main())

"""The CPU demo, the README's main job: `python launch/demo.py --config demo_cpu [key=value ...]`.

Paper 003's whole pipeline at toy scale on the synthetic cross-domain benchmark, on the CPU:
  1. generate the benchmark and build the tiny random-initialised policy;
  2. evaluate the base model on the protocol's target domains;
  3. write the SFT conversations with the templated annotation writer (`rft annotate --templated`);
  4. SFT stage 1 (knowledge transfer) and stage 2 (tool-call format injection, Eq. 8): launch/sft.py;
  5. evaluate after SFT;
  6. DT-GRPO with vLLM in this process and in-process rewards: launch/grpo.py, which evaluates at the end.
Each evaluation prints HTER and AUC per target domain for the fast answer (first turn) and the final answer
(after greedy tool calls), both scored by P(Spoof) over the Real/Spoof answer tokens (paper 003).
Outputs go to run.output_dir/run.name/: metrics.json (every stage), annotated/, sft_stage1/, sft_stage2/,
grpo/; a rerun replaces the stages of the earlier one (the annotation is reused). On GPUs the stages are
`launch/sft.py --stage 1|2` and `accelerate launch launch/grpo.py`: on 1 GPU as they are (or with
--config_file deploy/accelerate/zero3_1gpu.yaml), on N with --config_file deploy/accelerate/zero3_8gpu.yaml.
"""

from __future__ import annotations

import sys

from rft.allocator import keep_freed_memory_on_cpu_host
from rft.errors import run_command
from rft.jobs import demo


def main(argv: list[str] | None = None) -> int:
    def job() -> int:
        args = demo.parser(__doc__).parse_args(argv)
        config = demo.config_from(args)
        results = demo.run(config)
        demo.print_summary(config, results)
        return 0

    return run_command(job)


if __name__ == "__main__":
    keep_freed_memory_on_cpu_host()  # for the whole process (rft/allocator.py)
    sys.exit(main())

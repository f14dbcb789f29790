"""GRPO on the rollout server: `accelerate launch launch/grpo.py --config NAME [--resume] [key=value ...]`.

Trains grpo.method (dt_grpo or st_grpo: paper 003 over multi-turn tool episodes; rft_fas: paper 001's
single-turn GRPO) on the protocol's source split, starting from grpo.init_from (the run's SFT stage-2 model
by default). Episodes come from the rollout servers at rollout.urls (start them with `python -m
rollout_server`, token in $RFT_ROLLOUT_TOKEN) or, with rollout.mode=inprocess, from vLLM in this process;
rewards from reward_service.url. Writes under run.output_dir/run.name/grpo/: checkpoints/ (every
grpo.save_steps; --resume continues from the newest), tensorboard/, rollouts/ (every episode with its
images and rewards), eval/ (target-domain metrics every eval.steps and at the end), metrics.json and
model/ (a plain Hugging Face folder). A fresh start over an earlier run's outputs is refused: continue it
with --resume or replace it with --overwrite. docs/TRAINING.md has the details.

examples (1 GPU, 8 GPUs under DeepSpeed ZeRO-3, the CPU):
  accelerate launch launch/grpo.py --config cefa_to_hqwmca.yaml
  accelerate launch --config_file deploy/accelerate/zero3_8gpu.yaml launch/grpo.py --config cefa_to_hqwmca
  python launch/grpo.py --config demo_cpu rollout.mode=inprocess grpo.max_steps=5
"""

from __future__ import annotations

import sys

from rft.errors import run_command
from rft.jobs import grpo


def main(argv: list[str] | None = None) -> int:
    def job() -> int:
        args = grpo.parser(__doc__).parse_args(argv)
        request = grpo.request_from(args)
        results = grpo.run(request.config, request.resume, overwrite=request.overwrite)
        grpo.print_summary(request.config, results)
        return 0

    return run_command(job)


if __name__ == "__main__":
    sys.exit(main())

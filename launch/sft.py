"""Paper 003's SFT stages: `python launch/sft.py --config NAME --stage 1|2 [--resume] [key=value ...]`.

Stage 1 (knowledge transfer) trains on `knowledge_transfer` conversations with plain nll; stage 2 (tool-call
format injection) trains on `tool_trajectory` conversations with Eq. 8 (first round weighted sft.alpha).
Both read stored conversations from sft.data_dir (a saved dataset, or the `rft annotate` output folder);
stage 2 starts from stage 1's export (sft.stage2_init_from). Both write under run.output_dir/run.name/sft_stage<N>/:
checkpoints/ (every sft.save_steps; --resume continues from the newest, --resume-from from a given one,
--overwrite replaces an earlier run of the stage, over which a fresh start is refused), tensorboard/,
config.yaml, and model/, a plain Hugging Face folder (LoRA merged) that stage 2, GRPO and the
rollout server load as model.path. docs/SFT.md has the details.
On 1 GPU (or the CPU): `python launch/sft.py ...`.
On N GPUs: `accelerate launch [--config_file deploy/accelerate/zero2_8gpu.yaml] launch/sft.py ...`.
"""

from __future__ import annotations

import sys

from rft.allocator import keep_freed_memory_on_cpu_host
from rft.errors import run_command
from rft.jobs import sft


def main(argv: list[str] | None = None) -> int:
    def job() -> int:
        args = sft.parser(__doc__).parse_args(argv)
        request = sft.request_from(args)
        model_dir = sft.run(request.config, request.resume, overwrite=request.overwrite)
        print(f"SFT stage {request.config.sft.stage} done; model: {model_dir}")
        return 0

    return run_command(job)


if __name__ == "__main__":
    keep_freed_memory_on_cpu_host()  # for the whole process (rft/allocator.py)
    sys.exit(main())

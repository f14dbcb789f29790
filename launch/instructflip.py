"""The InstructFLIP baseline (paper 000): `python launch/instructflip.py --config NAME [--resume] [key=value ...]`.

Trains CLIP + content/style Q-Former branches with a frozen FLAN-T5 (Eq. 1-7, loss weights 0.4/0.4/0.15/0.05,
AdamW + OneCycleLR) on the protocol's source split, then scores every target domain with the LLM-free path
(the classifier's P(spoof)) into the common report. Writes under run.output_dir/run.name/instructflip/:
checkpoints/ (every instructflip.save_steps; --resume continues from the newest, --resume-from from a given
one, --overwrite replaces an earlier run, over which a fresh start is refused), tensorboard/ (every loss
term on its own curve), train_log.json, config.yaml, model/ (vision/, qformer_content/, qformer_style/, t5/
in transformers formats, heads.safetensors), scores/<domain>.csv and metrics.json. docs/BASELINES.md has the details.
On the CPU: `python launch/instructflip.py --config instructflip_cpu`; on a GPU the same command uses it.
One process: the job refuses `accelerate launch` / torchrun with several processes.
"""

from __future__ import annotations

import sys

from rft.errors import run_command
from rft.jobs import instructflip


def main(argv: list[str] | None = None) -> int:
    def job() -> int:
        args = instructflip.parser(__doc__).parse_args(argv)
        request = instructflip.request_from(args)
        results = instructflip.run(request.config, request.resume, overwrite=request.overwrite)
        print("\n".join(instructflip.summary_lines(results)))
        print(f"outputs: {instructflip.stage_dir(request.config)}")
        return 0

    return run_command(job)


if __name__ == "__main__":
    sys.exit(main())

"""Paper 002's caption-supervised VLM: `python launch/caption.py --config NAME [--resume] [key=value ...]`.

A Qwen2.5-VL / InternVL3 backbone with LoRA (rank 32, q/k/v of the language model), trainable lm_head and
projector, and a linear live/spoof head on pooled vision features, trained on 0.7 x classification + 0.3 x
caption language modelling (Eq. 1) with vanilla, reasoning or mixed captions (caption.captions). Evaluated on
the protocol's dev and target sets by the head's P(spoof) and by the generated explanation read by a judge
(caption.judge: rules offline, or an OpenAI-compatible endpoint). Writes run.output_dir/run.name/caption/
(checkpoints/, tensorboard/, model/, eval/ with per-sample scores for launch/compare.py);
--resume continues from the newest checkpoint, --overwrite replaces an earlier run.
docs/BASELINES.md has the details.
On 1 GPU (or the CPU): `python launch/caption.py --config caption_cpu`.
On N GPUs: `accelerate launch [--config_file deploy/accelerate/zero2_8gpu.yaml] launch/caption.py ...`.
"""

from __future__ import annotations

import sys

from rft.errors import run_command
from rft.jobs import caption


def main(argv: list[str] | None = None) -> int:
    def job() -> int:
        args = caption.parser(__doc__).parse_args(argv)
        request = caption.request_from(args)
        result = caption.run(request.config, request.resume, overwrite=request.overwrite)
        head = result.get("head", {}).get("overall", {})
        if head:
            print(f"caption run done: head HTER {head['hter']:.4f}, AUC {head['auc']:.4f} (pooled targets)")
        return 0

    return run_command(job)


if __name__ == "__main__":
    sys.exit(main())

"""Paper 003's ablations as one command: `python launch/ablation.py --config ablation_cpu [key=value ...]`.

Runs every arm of the config's `ablation:` section once per seed on the protocol (Table 2: the tool sets
zoom_in, zoom_in+frequency, zoom_in+texture, zoom_in+structure, all; Table 3: stage lists such as [fi, rl],
[kt, fi], [kt, fi, rl], where kt = knowledge transfer (SFT stage 1), fi = format injection (SFT stage 2)
and rl = DT-GRPO). An arm's tool set is its run.tools: the prompt lists only those tools, a call to another
one is answered as an unknown tool, and only they earn the tool reward.
Arms share the stage outputs they have in common (one kt per seed; one fi per seed and tool set), and a
killed run resumes: a stage folder marked complete is skipped. Outputs under run.output_dir/run.name/:
ablation/ (the stages), ablation.md (unseen-domain HTER/AUC, mean ± std per arm over the seeds),
ablation.png and ablation.json. See docs/EFFICACY.md, "Ablations".
"""

from __future__ import annotations

import sys

from rft.allocator import keep_freed_memory_on_cpu_host
from rft.errors import run_command
from rft.jobs import ablation, demo


def main(argv: list[str] | None = None) -> int:
    def job() -> int:
        args = demo.parser(__doc__).parse_args(argv)
        config = demo.config_from(args)
        done = ablation.run(config)
        print((config.run_dir / "ablation.md").read_text())
        print(
            f"stages run: {len(done.ran)}, skipped (complete): {len(done.skipped)}; outputs: {config.run_dir}"
        )
        return 0

    return run_command(job)


if __name__ == "__main__":
    keep_freed_memory_on_cpu_host()  # for the whole process (rft/allocator.py)
    sys.exit(main())

"""The CPU demo, the README's main job: `python launch/demo.py --config demo_cpu [key=value ...]`.

Today it runs the largest end-to-end slice that exists: generate the synthetic cross-domain benchmark,
build the tiny policy, and evaluate the base model on the protocol's target domains by the probability of
its fast answer (paper 003's AUC convention), printing HTER and AUC. The SFT and GRPO stages join this
script when the trainer exists (issue #6). On N GPUs the same job is `accelerate launch launch/grpo.py`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from rft.config import ConfigError, ExperimentConfig, load_config, save_resolved_config


def parse(argv: list[str] | None) -> ExperimentConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--config", required=True, help="a config name from configs/ or a YAML path")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. eval.max_samples=50")
    args = parser.parse_args(argv)
    return load_config(args.config, args.overrides)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run(config: ExperimentConfig) -> dict:
    # Imported here so that a bad config fails in a second, before any heavy import or model load.
    from rft.data.prepare import prepare_roots
    from rft.data.protocols import load_protocol, materialize
    from rft.eval.report import compute_report
    from rft.eval.scoring import spoof_probabilities
    from rft.models.loading import load_policy, resolve_model_dir

    run_dir = config.run_dir
    save_resolved_config(config, run_dir)
    seed_everything(config.run.seed)
    data, synth = config.data, config.data.synthetic
    protocol = load_protocol(data.protocol)
    roots = prepare_roots(
        datasets_needed=protocol.datasets,
        roots=data.roots,
        cache_dir=data.cache_dir,
        image_size=data.image_size,
        n_per_domain=synth.n_per_domain,
        seed=synth.seed,
        attack_strength=synth.attack_strength,
        workers=synth.workers,
    )
    splits = materialize(protocol, roots, data.cache_dir, data.image_size)
    model_dir = resolve_model_dir(
        path=config.model.path,
        tiny_preset=config.model.tiny_preset,
        arch=config.model.arch,
        cache_dir=config.model.cache_dir,
        image_size=data.image_size,
    )
    model, processor = load_policy(model_dir, config.model.dtype)
    reports = {}
    for name, target in splits.targets.items():
        if config.eval.max_samples and len(target) > config.eval.max_samples:
            target = target.shuffle(seed=config.run.seed).select(range(config.eval.max_samples))
        images = [row.convert("RGB") for row in target["image"]]
        scores = spoof_probabilities(model, processor, images, batch_size=config.eval.batch_size)
        rows = [
            {"id": i, "score": s, "label": "spoof" if y == 1 else "live", "attack_type": t, "domain": name}
            for i, s, y, t in zip(target["id"], scores, target["label"], target["spoof_type"], strict=True)
        ]
        reports[name] = compute_report(rows)
    (run_dir / "metrics_base.json").write_text(json.dumps(reports, indent=2))
    return reports


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse(argv)
        reports = run(config)
    except ConfigError as error:  # raised before any model is loaded
        print(f"config error: {error}", file=sys.stderr)
        return 2
    for name, report in reports.items():
        overall = report["overall"]
        print(
            f"[base model] target {name}: HTER {overall['hter'] * 100:.2f}%  AUC {overall['auc'] * 100:.2f}%"
        )
    print(f"outputs: {config.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

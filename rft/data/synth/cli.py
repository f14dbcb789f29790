"""`rft synth`: generate the synthetic face anti-spoofing benchmark."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rft.data.synth.generate import DOMAINS, MAX_ATTACK_STRENGTH, generate_benchmark, write_contact_sheet
from rft.outputs import OutputDirError


def build_parser() -> argparse.ArgumentParser:
    domain_lines = "\n".join(f"  {d.name:<8} {d.description}" for d in DOMAINS.values())
    parser = argparse.ArgumentParser(
        prog="rft synth",
        description=(
            "Generate the physically simulated face anti-spoofing benchmark: real and procedural faces,\n"
            "print / replay / mask / partial attacks rendered from first principles, and a simulated camera\n"
            "per domain. Writes a Hugging Face dataset (PNG images embedded) plus summary.json to --out.\n\n"
            f"domains:\n{domain_lines}"
        ),
        epilog=(
            "example:\n  rft synth --out data/synthetic --n-per-domain 1000 --seed 0 --workers 2\n\n"
            "The same arguments give byte-identical images, whatever --workers is. Use the folder as\n"
            "data.roots.synthetic with configs/protocols/synth_cross_domain.yaml. See docs/SYNTHETIC.md."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder: new, or replaced if it holds an earlier run"
    )
    parser.add_argument("--n-per-domain", type=int, default=1000, help="images per domain (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="global seed (default: 0)")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes (default: 2)")
    parser.add_argument(
        "--image-size", type=int, default=224, help="side of the square face crops (default: 224)"
    )
    parser.add_argument(
        "--attack-strength",
        type=float,
        default=1.0,
        help=f"scale of the attack cues, in (0, {MAX_ATTACK_STRENGTH:g}]: 1 plausible, 2-3 obvious (default: 1)",
    )
    parser.add_argument(
        "--domains",
        nargs="+",
        default=list(DOMAINS),
        choices=list(DOMAINS),
        help="domains to generate (default: all)",
    )
    parser.add_argument(
        "--preview", type=Path, help="also write a contact sheet PNG of every domain x attack type"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        out = generate_benchmark(
            args.out,
            n_per_domain=args.n_per_domain,
            seed=args.seed,
            image_size=args.image_size,
            workers=args.workers,
            attack_strength=args.attack_strength,
            domains=args.domains,
            progress=not args.quiet,
        )
    except OutputDirError as error:
        print(f"rft synth: error: --out {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"rft synth: error: {error}", file=sys.stderr)
        return 2
    summary = json.loads((out / "summary.json").read_text())
    print(f"wrote {summary['total']} images to {out} in {time.perf_counter() - started:.1f} s")
    for domain, splits in summary["counts"].items():
        print(f"  {domain}: " + ", ".join(f"{split} {counts['total']}" for split, counts in splits.items()))
    if args.preview:
        print(f"preview: {write_contact_sheet(out, args.preview)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`rft <command> ...`: the library's command-line entry point. Each command lives in its own module."""

from __future__ import annotations

import importlib
import sys

from rft.errors import run_command

# command -> (module with a `main(argv) -> int`, one-line description)
COMMANDS = {
    "tiny-model": ("rft.models.tiny", "build a random-initialised tiny Qwen2.5-VL / InternVL3 model"),
    "synth": ("rft.data.synth.cli", "generate the synthetic face anti-spoofing benchmark"),
    "import": ("rft.data.importers.cli", "import a public FAS dataset from its released layout"),
    "metrics": ("rft.eval.metrics_cli", "compute HTER/AUC/APCER/... from a scores CSV"),
    "compare": (
        "rft.jobs.compare",
        "runs side by side: one metrics table and one ROC plot (per-sample scores)",
    ),
    "experts": ("rft.experts.cli", "train / evaluate the per-tool expert CNNs (paper 003, App. A.3)"),
    "annotate": (
        "rft.annotate.cli",
        "build SFT conversations and captions with a teacher or the templated writer",
    ),
    # A service package (top level, like rollout_server): rft.cli is the one rft module above the services.
    "dashboard": ("dashboard.cli", "serve live reward curves and the episodes behind them (read-only)"),
}


def usage() -> str:
    lines = ["usage: rft <command> [options]   (rft <command> --help for its options)", "", "commands:"]
    lines += [f"  {name:<12} {description}" for name, (_, description) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"rft: unknown command '{argv[0]}'\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    # A command reports its own errors; an RftError it lets through is said in one line all the same.
    return run_command(lambda: int(module.main(argv[1:]) or 0), prog=f"rft {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())

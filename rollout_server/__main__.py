"""`python -m rollout_server`: one worker, or a pool of them with --workers N (options: rollout_server.cli)."""

from __future__ import annotations

import sys

from rollout_server.cli import parse_args
from rollout_server.pool import run_local_pool


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workers > 1:
        return run_local_pool(args)
    from rollout_server.worker import serve  # vLLM and the model stack: only a worker needs them

    serve(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

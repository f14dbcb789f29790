"""`rft dashboard RUNS_DIR`: live reward curves of run folders joined to their episodes (docs/DASHBOARD.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rft.auth import is_loopback
from rft.errors import RftError

DEFAULT_PORT = 8765


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rft dashboard",
        description=(
            "Serve a read-only web page of the runs under RUNS_DIR (any folder holding rollouts/ or "
            "tensorboard/, e.g. runs/<name>/grpo): reward curves, tool use, KL, times and evaluations, "
            "several runs overlaid; click a step for its GRPO groups; alerts for tool collapse, malformed "
            "episodes, zero reward std and NaN losses. The page follows runs that are still being written."
        ),
        epilog="example: rft dashboard runs/ --port 8765   then open http://127.0.0.1:8765/",
    )
    p.add_argument("runs_dir", metavar="RUNS_DIR", type=Path, help="folder holding the run folders")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on a --host beyond loopback (the page has no login: only on a network you trust)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--poll-seconds", type=float, default=2.0, help="how often the page looks for new steps")
    p.add_argument(
        "--tool-zero-steps", type=int, default=3, help="alert when the tool-call rate stays 0 this many steps"
    )
    p.add_argument(
        "--malformed-share",
        type=float,
        default=0.2,
        help="alert when more of a step's episodes are malformed",
    )
    p.add_argument(
        "--zero-std-share",
        type=float,
        default=0.5,
        help="alert when at least this share of a step's GRPO groups have zero reward std",
    )
    return p


def check_args(args: argparse.Namespace) -> None:
    if not args.runs_dir.is_dir():
        raise RftError(
            f"RUNS_DIR {str(args.runs_dir)!r} is not a folder; give the folder that holds your runs"
        )
    if not is_loopback(args.host) and not args.allow_remote:
        raise RftError(
            f"--host {args.host} is beyond loopback and the dashboard has no login; keep 127.0.0.1 and reach it "
            f"with `ssh -L {args.port}:127.0.0.1:{args.port} <machine>`, or add --allow-remote on a trusted network"
        )
    if not 0 < args.port < 65536:
        raise RftError(f"--port {args.port} is not a port; give one in 1-65535")
    if not args.poll_seconds > 0:
        raise RftError(f"--poll-seconds {args.poll_seconds} must be above 0")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    check_args(args)
    from pydantic import ValidationError

    from dashboard.alerts import AlertSettings

    try:
        settings = AlertSettings(
            tool_zero_steps=args.tool_zero_steps,
            malformed_share=args.malformed_share,
            zero_std_share=args.zero_std_share,
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise RftError(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None

    import uvicorn

    from dashboard.app import build_app

    app = build_app(args.runs_dir, settings, poll_seconds=args.poll_seconds)
    print(f"rft dashboard: serving {args.runs_dir} at http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0

"""`python -m reward_service`: run the reward service (visual tools + rollout scoring) on Ray Serve.

    python -m reward_service --port 8100 --replicas 2            # local Ray, 127.0.0.1 only
    RFT_REWARD_TOKEN=... RAY_ADDRESS=auto python -m reward_service --host 0.0.0.0 --replicas 8   # on a cluster

Endpoints: POST /v1/tools, POST /v1/score, GET /healthz, /readyz, /metrics (docs/REWARD_SERVICE.md). The
token comes from --token or the RFT_REWARD_TOKEN environment variable; with one, every endpoint but /healthz
and /readyz wants 'Authorization: Bearer <token>'. Bound beyond loopback, the service refuses to start
without one unless --insecure-no-token (docs/SECURITY.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from reward_service.api import TOKEN_ENV
from reward_service.app import ServiceSettings
from rft.auth import check_exposure, resolve_token
from rft.errors import RftError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = ServiceSettings()
    parser = argparse.ArgumentParser(
        prog="python -m reward_service",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--token", default=None, help=f"shared token clients must send (or ${TOKEN_ENV})")
    parser.add_argument(
        "--insecure-no-token",
        action="store_true",
        help="listen beyond loopback without a token: anyone who reaches the port may use the service",
    )
    parser.add_argument("--replicas", type=int, default=defaults.replicas, help="replicas of each worker")
    parser.add_argument("--max-replicas", type=int, default=None, help="enable autoscaling up to this many")
    parser.add_argument("--replica-cpus", type=float, default=defaults.replica_cpus)
    parser.add_argument("--request-timeout", type=float, default=defaults.request_timeout_s, help="seconds")
    parser.add_argument(
        "--max-batch-size", type=int, default=defaults.max_batch_size, help="tool calls per batch"
    )
    parser.add_argument("--batch-wait-ms", type=float, default=defaults.batch_wait_ms)
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray (default: all)")
    parser.add_argument(
        "--max-body-mb", type=int, default=defaults.max_body_bytes >> 20, help="largest request body (MiB)"
    )
    args = parser.parse_args(argv)
    if args.replicas < 1 or (args.max_replicas is not None and args.max_replicas < args.replicas):
        parser.error("--replicas must be >= 1 and --max-replicas (if given) >= --replicas")
    if args.max_batch_size < 1 or args.request_timeout <= 0:
        parser.error("--max-batch-size must be >= 1 and --request-timeout > 0")
    if args.max_body_mb < 1:
        parser.error("--max-body-mb must be >= 1")
    args.token = resolve_token(args.token, TOKEN_ENV)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        warning = check_exposure(args.host, args.token, env_var=TOKEN_ENV, insecure=args.insecure_no_token)
    except RftError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if warning:
        print(warning, file=sys.stderr, flush=True)
    from reward_service.app import start, stop  # Ray is imported only once the arguments are known good

    settings = ServiceSettings(
        replicas=args.replicas,
        max_replicas=args.max_replicas,
        replica_cpus=args.replica_cpus,
        request_timeout_s=args.request_timeout,
        max_batch_size=args.max_batch_size,
        batch_wait_ms=args.batch_wait_ms,
        max_body_bytes=args.max_body_mb << 20,
    )
    url = start(
        settings,
        host=args.host,
        port=args.port,
        num_cpus=args.num_cpus,
        token=args.token,
        insecure_no_token=args.insecure_no_token,
    )
    print(f"reward_service ready at {url} (Ctrl-C to stop)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())

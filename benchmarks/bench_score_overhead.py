"""What a remote scoring call does that an in-process one does not, each step timed alone in one process.

python benchmarks/bench_score_overhead.py --reps 300
The same 64 three-turn DT-GRPO episodes as bench_reward_service.py: the replica's request validation from
JSON, idempotency hash and answer serialisation, the client's body building and answer parsing, against
`score_batch` alone and the in-process mode's validation from Python objects plus `score_batch`. Medians in
milliseconds (docs/PERFORMANCE.md, Reward service).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pydantic_core

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_reward_service import episodes, score_in_process

from reward_service.api import ScoreRequest, ScoreResponse
from reward_service.core import score_batch
from reward_service.idempotency import fingerprint


def interleaved_medians_ms(steps: dict[str, Callable[[], object]], reps: int, warmup: int = 20) -> dict:
    """Each step once per round, round after round, so that drift in the host's speed reaches all alike."""
    for _ in range(warmup):
        for fn in steps.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(reps):
        for name, fn in steps.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(samples) for name, samples in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--reps", type=int, default=300, help="timed calls per step")
    args = parser.parse_args(argv)
    batch = episodes(64)
    fields = {"request_id": "bench/0-64", "method": "dt_grpo", "coefficients": {}, "max_tool_calls": 3}

    def client_body() -> bytes:
        return pydantic_core.to_json({**fields, "rollouts": batch})

    body = client_body()
    request = ScoreRequest.model_validate_json(body)
    response = score_batch(request)
    answer = response.model_dump_json().encode()
    steps = {
        "client: build the body": client_body,
        "replica: validate the JSON request": lambda: ScoreRequest.model_validate_json(body),
        "replica: idempotency hash": lambda: fingerprint(body),
        "replica: serialise the answer": lambda: response.model_dump_json().encode(),
        "client: parse the answer": lambda: ScoreResponse.model_validate_json(answer),
        "score_batch alone": lambda: score_batch(request),
        "in-process mode (validation from objects + score_batch)": lambda: score_in_process(batch),
    }
    print(f"request {len(body)} bytes, answer {len(answer)} bytes; medians of {args.reps} rounds, ms")
    for name, value in interleaved_medians_ms(steps, args.reps).items():
        print(f"  {name}: {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

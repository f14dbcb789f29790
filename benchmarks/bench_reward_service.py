"""Benchmark the reward service against calling the same functions in-process.

    python benchmarks/bench_reward_service.py --replicas 1 2 --reps 60

For each replica count it starts the real service (Ray Serve on 127.0.0.1) and measures:
- the cost of scoring one batch of 64 multi-turn DT-GRPO episodes through the service, against scoring the
  same batch in-process plus one HTTP round trip: a POST of the same request body to /v1/echo, which reads
  it and answers as many bytes as the scoring answer has, doing nothing else (also reported: a bodiless
  GET /healthz and the same POST with a small answer; Serve's proxy moves bodies to and from the replica in
  extra messages, so those understate the transport of a 30 kB request and a 20 kB answer);
- throughput: tool calls/s (224x224 FFTTool/LBPTool/ZoomInTool calls from concurrent clients) and scored
  rollouts/s (concurrent batches of 64).
Medians are reported; the machine's other load shows in the spread, so run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reward_service.api import Rollout, ScoreRequest
from reward_service.client import RewardClient
from reward_service.core import score_batch

TOOL_CALLS = [
    ("FFTTool", {}),
    ("LBPTool", {}),
    ("ZoomInTool", {"bbox": [40, 40, 180, 180]}),
]


def episodes(n: int) -> list[dict]:
    """Three-turn episodes with two tool calls each: the shape DT-GRPO scores most often."""
    call = '<think>look closer</think><tool_call>{{"name": "{}", "arguments": {}}}</tool_call>'
    turns = [
        "<Spoof><reason>the skin looks flat and glossy</reason>",
        call.format("FFTTool", "{}"),
        call.format("ZoomInTool", '{"bbox": [40, 40, 180, 180]}'),
        "<think>periodic peaks and a visible screen grid</think><answer><Spoof></answer>",
    ]
    return [{"id": f"e{i}", "label": "spoof" if i % 2 else "live", "turns": turns} for i in range(n)]


def median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def score_in_process(batch: list[dict]) -> None:
    request = ScoreRequest(
        request_id=uuid.uuid4().hex, method="dt_grpo", rollouts=[Rollout.model_validate(r) for r in batch]
    )
    score_batch(request)


def interleaved(fns: dict, reps: int, warmup: int = 5) -> dict[str, list[float]]:
    """Time each function once per round, round after round, so drift in the machine's load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def throughput(fn, clients: int, seconds: float) -> float:
    """Completed calls per second with `clients` concurrent callers for about `seconds`."""
    deadline = time.perf_counter() + seconds

    def loop() -> int:
        done = 0
        while time.perf_counter() < deadline:
            fn()
            done += 1
        return done

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(lambda _: loop(), range(clients)))
    return total / (time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_replicas(replicas: int, reps: int, seconds: float, clients: int) -> dict:
    from reward_service.app import ServiceSettings, start, stop

    url = start(ServiceSettings(replicas=replicas, replica_cpus=0.5), port=free_port(), num_cpus=2)
    try:
        client = RewardClient(url)
        batch = episodes(64)
        session = requests.Session()
        body = ScoreRequest(request_id="echo", method="dt_grpo", rollouts=batch).model_dump_json()
        headers = {"Content-Type": "application/json"}
        reply = session.post(url + "/v1/score", data=body, headers=headers, timeout=30)
        echo_url = f"{url}/v1/echo?reply_bytes={len(reply.content)}"
        times = interleaved(
            {
                "local": lambda: score_in_process(batch),
                "get": lambda: session.get(url + "/healthz", timeout=10),
                "post": lambda: session.post(url + "/v1/echo", data=body, headers=headers, timeout=10),
                "rtt": lambda: session.post(echo_url, data=body, headers=headers, timeout=10),
                "service": lambda: client.score("dt_grpo", batch),
            },
            reps,
        )
        local, rtt, service = times["local"], times["rtt"], times["service"]
        image = (np.random.default_rng(0).random((224, 224, 3)) * 255).astype(np.uint8)
        calls = iter(range(10**9))

        def one_tool_call() -> None:
            name, arguments = TOOL_CALLS[next(calls) % len(TOOL_CALLS)]
            assert client.run_tool(name, image, arguments).ok

        tools_per_s = throughput(one_tool_call, clients, seconds)
        batches_per_s = throughput(lambda: client.score("dt_grpo", batch), clients, seconds)
        budget = (median_ms(local) + median_ms(rtt)) * 1.05
        return {
            "replicas": replicas,
            "in_process_64_ms": round(median_ms(local), 2),
            "get_healthz_ms": round(median_ms(times["get"]), 2),
            "post_same_body_small_answer_ms": round(median_ms(times["post"]), 2),
            "http_round_trip_ms (same body, same answer size)": round(median_ms(rtt), 2),
            "service_64_ms": round(median_ms(service), 2),
            "budget_ms (in-process + RTT) x 1.05": round(budget, 2),
            "within_budget": median_ms(service) <= budget,
            "service / in-process": round(median_ms(service) / median_ms(local), 2),
            "tool_calls_per_s": round(tools_per_s, 1),
            "scored_rollouts_per_s": round(64 * batches_per_s, 1),
        }
    finally:
        stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=60, help="timed repetitions per latency figure")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each throughput run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent callers in throughput runs")
    args = parser.parse_args(argv)
    rows = [bench_replicas(n, args.reps, args.seconds, args.clients) for n in args.replicas]
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

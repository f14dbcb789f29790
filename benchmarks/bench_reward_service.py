"""Benchmark the reward service against calling the same functions in-process.

    python benchmarks/bench_reward_service.py --replicas 1 2 --runs 5 --reps 100 --seconds 8

Each run starts the real service (Ray Serve on 127.0.0.1, replicas at 0.5 CPU on a 2-CPU Ray) for each
replica count in turn, measures, and stops it; runs alternate replica counts so that drift in the machine's
load reaches all of them. A run measures:
- the cost of scoring one batch of 64 multi-turn DT-GRPO episodes through the service (`RewardClient.score`
  with its defaults, which send it as one chunk, and with `spread_over_replicas`, a chunk per replica),
  against scoring the same batch in-process plus one HTTP round trip: a POST of the same request body to
  /v1/echo, which reads it and answers as many bytes as the scoring answer has, doing nothing else (also
  reported: a bodiless GET /healthz);
- throughput: tool calls/s (224x224 FFTTool/LBPTool/ZoomInTool calls from concurrent clients) with PNG and
  with raw images, and scored rollouts/s (concurrent batches of 64).
Each figure of a run is a median over its repetitions; the summary gives, per replica count, the median of
the runs' figures and their range (min-max).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reward_service.api import Rollout, ScoreRequest
from reward_service.client import InProcessRewards, RewardClient, service_session
from reward_service.core import score_batch

TOOL_CALLS = [
    ("FFTTool", {}),
    ("LBPTool", {}),
    ("ZoomInTool", {"bbox": [40, 40, 180, 180]}),
]
BATCH = 64


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
    """What `InProcessRewards.score` does: validate the request, then the same `score_batch` a replica runs."""
    request = ScoreRequest(
        request_id=uuid.uuid4().hex, method="dt_grpo", rollouts=[Rollout.model_validate(r) for r in batch]
    )
    score_batch(request)


def interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 5) -> dict[str, list[float]]:
    """Time each function once per round, round after round, so drift in the machine's load hits all alike;
    in a new (seeded) order each round, so no function always runs right after the same other one."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    order, shuffle = list(fns), random.Random(0).shuffle
    for round_ in range(warmup + reps):
        shuffle(order)
        for name in order:
            start = time.perf_counter()
            fns[name]()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


def throughput(fn: Callable[[], object], clients: int, seconds: float) -> float:
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


def latencies(url: str, reps: int) -> dict[str, float]:
    """Medians (ms) of one 64-episode batch in-process, through the service, and of the transport alone."""
    batch = episodes(BATCH)
    client = RewardClient(url)
    spread = RewardClient(url, spread_over_replicas=True)
    session = service_session()  # the client's own settings, so the round trip is measured like its requests
    body = ScoreRequest(request_id="echo", method="dt_grpo", rollouts=batch).model_dump_json()
    headers = {"Content-Type": "application/json"}
    answer = session.post(url + "/v1/score", data=body, headers=headers, timeout=30).content
    echo_url = f"{url}/v1/echo?reply_bytes={len(answer)}"
    times = interleaved(
        {
            "in_process": lambda: score_in_process(batch),
            "get_healthz": lambda: session.get(url + "/healthz", timeout=10),
            "http_round_trip": lambda: session.post(echo_url, data=body, headers=headers, timeout=10),
            "service": lambda: client.score("dt_grpo", batch),
            "service_spread": lambda: spread.score("dt_grpo", batch),
        },
        reps,
    )
    client.close()
    spread.close()
    figures = {name: median_ms(samples) for name, samples in times.items()}
    for name in ("service", "service_spread"):
        figures[f"{name} / (in-process + RTT), paired"] = paired_ratio(times, name)
    return figures


def paired_ratio(times: dict[str, list[float]], name: str) -> float:
    """Median over rounds of the round's `name` time / (in-process + round trip) of the same round: load
    that drifts between rounds cancels out, which makes it steadier than the ratio of the medians."""
    baseline = [a + b for a, b in zip(times["in_process"], times["http_round_trip"], strict=True)]
    return statistics.median(t / base for t, base in zip(times[name], baseline, strict=True))


def tool_image() -> np.ndarray:
    return (np.random.default_rng(0).random((224, 224, 3)) * 255).astype(np.uint8)


def tool_latencies(url: str, reps: int) -> dict[str, float]:
    """Medians (ms) of one FFTTool call on a 224x224 image, in-process and through the service, per encoding:
    what the encoding costs on top of the tool (in-process) and on top of the transport."""
    image = tool_image()
    callers = {
        f"tool call {mode} {encoding}": caller
        for encoding in ("png", "raw")
        for mode, caller in (
            ("in-process", InProcessRewards(image_encoding=encoding)),
            ("service", RewardClient(url, image_encoding=encoding)),
        )
    }
    times = interleaved(
        {name: lambda c=c: c.run_tool("FFTTool", image, {}) for name, c in callers.items()}, reps
    )
    return {name: median_ms(samples) for name, samples in times.items()}


def tool_calls_per_s(url: str, encoding: str, clients: int, seconds: float) -> float:
    client = RewardClient(url, image_encoding=encoding)
    image = tool_image()
    calls = iter(range(10**9))

    def one_tool_call() -> None:
        name, arguments = TOOL_CALLS[next(calls) % len(TOOL_CALLS)]
        assert client.run_tool(name, image, arguments).ok

    return throughput(one_tool_call, clients, seconds)


def bench_run(replicas: int, reps: int, seconds: float, clients: int) -> dict[str, float]:
    from reward_service.app import ServiceSettings, start, stop

    load_before = os.getloadavg()[0]
    url = start(ServiceSettings(replicas=replicas, replica_cpus=0.5), port=free_port(), num_cpus=2)
    try:
        figures = latencies(url, reps)
        budget = (figures["in_process"] + figures["http_round_trip"]) * 1.05
        figures["budget"] = budget
        figures["service / budget"] = figures["service"] / budget
        figures["spread / budget"] = figures["service_spread"] / budget
        figures.update(tool_latencies(url, max(10, reps // 3)))
        figures["tool_calls_per_s png"] = tool_calls_per_s(url, "png", clients, seconds)
        figures["tool_calls_per_s raw"] = tool_calls_per_s(url, "raw", clients, seconds)
        client = RewardClient(url)
        batch = episodes(BATCH)
        figures["scored_rollouts_per_s"] = BATCH * throughput(
            lambda: client.score("dt_grpo", batch), clients, seconds
        )
        client.close()
        figures["load_average"] = (load_before + os.getloadavg()[0]) / 2
        return figures
    finally:
        stop()


def summarize(runs: list[dict[str, float]]) -> dict[str, object]:
    """Per figure: [median over runs, min, max]; plus how many runs met the budget."""
    summary: dict[str, object] = {"runs": len(runs)}
    for name in runs[0]:
        values = [run[name] for run in runs]
        summary[name] = [round(value, 3) for value in (statistics.median(values), min(values), max(values))]
    summary["runs within budget"] = sum(run["service / budget"] <= 1 for run in runs)
    summary["runs within budget, spread"] = sum(run["spread / budget"] <= 1 for run in runs)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=3, help="fresh services per replica count")
    parser.add_argument("--reps", type=int, default=60, help="timed repetitions per latency figure and run")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each throughput run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent callers in throughput runs")
    parser.add_argument("--out", type=Path, help="also write every run's figures here (JSON)")
    args = parser.parse_args(argv)
    runs: dict[int, list[dict[str, float]]] = {n: [] for n in args.replicas}
    for _ in range(args.runs):
        for replicas in args.replicas:
            runs[replicas].append(bench_run(replicas, args.reps, args.seconds, args.clients))
            print(f"replicas={replicas}: {json.dumps(runs[replicas][-1])}", file=sys.stderr, flush=True)
    report = {f"{n} replicas": summarize(runs[n]) for n in args.replicas}
    if args.out:
        args.out.write_text(json.dumps({"runs": runs, "summary": report}, indent=1))
    for title, summary in report.items():  # one line per figure: [median, min, max] over the runs
        print(title + "\n" + "\n".join(f"  {name}: {json.dumps(value)}" for name, value in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""launch/grpo.py as a user runs it, against one real rollout server (vLLM's CPU build) on the 56x56 protocol
model: killed after a checkpoint and resumed, two gloo processes with the Ray Serve reward service, two
processes under the shipped DeepSpeed ZeRO-2 / ZeRO-3 accelerate configs (CPU, fp32), and a LoRA run.

Every run is a subprocess (`python launch/grpo.py` or `python -m accelerate.commands.launch`) with one
OpenMP thread. The protocol model has memorised a paper-003 tool trajectory, so seeded sampling gives real
multi-turn episodes whose rewards differ within a group: the gradients compared below are not zero.

accelerate 1.15 and several CPU processes: `--cpu --num_processes 2`, and a config with `distributed_type:
MULTI_CPU`, start a single process unless an MPI hostfile is given (`--mpirun_hostfile`). Two gloo processes
come from the torchrun path: `--multi_gpu --num_processes 2` with no visible GPU (the script's state then
asks for the CPU). The DeepSpeed configs go through the DeepSpeed launcher (torchrun as well).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import torch
import yaml
from metrics_scrape import metric_value, scrape

from rft.models.loading import load_policy

pytestmark = pytest.mark.timeout(1800)

REPO = Path(__file__).resolve().parents[2]
ROLLOUT_TESTS = REPO / "tests" / "rollout_server"
PROTOCOL_STEPS = 90
IMAGE_SIDE = 56
RUN_TIMEOUT_S = 900


def _rollout_helpers():
    """tests/rollout_server/conftest.py as a module: free_port, wait_until_ready, stop_server, TOKEN."""
    spec = importlib.util.spec_from_file_location("launch_rollout_helpers", ROLLOUT_TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _rollout_helpers()
sys.path.insert(0, str(ROLLOUT_TESTS))
from protocol_model import train_protocol_model  # noqa: E402


def subprocess_env() -> dict[str, str]:
    # One OpenMP thread per process (two cores shared with other jobs); no GPU, so every run is the CPU one.
    return dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        CUDA_VISIBLE_DEVICES="",
        RFT_ROLLOUT_TOKEN=helpers.TOKEN,
    )


# -- shared servers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def protocol_dir(model_cache: Path) -> Path:
    """The tiny Qwen2.5-VL for 56x56 images that has memorised a tool trajectory (as in test_grpo.py)."""
    from rft.models.tiny import ensure_tiny_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny", image_size=IMAGE_SIDE)
        # Trained short of perfect recall: a group of G episodes must differ in reward now and then, or
        # every advantage is 0 and no step has a gradient to compare (the format-merged tokenizer makes the
        # trajectory few tokens, and 120 steps memorise it exactly).
        steps = PROTOCOL_STEPS
        return train_protocol_model(
            base, model_cache / f"protocol-qwen2_5_vl-{IMAGE_SIDE}-{steps}", steps=steps
        )
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def rollout_url(protocol_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One rollout server for every run of this module (runs go one after another; each pushes its own
    weights before its first rollouts)."""
    port = helpers.free_port()
    log = tmp_path_factory.mktemp("rollout_server") / "server.log"
    argv = [
        sys.executable,
        "-m",
        "rollout_server",
        "--model",
        str(protocol_dir),
        "--port",
        str(port),
        "--image-size",
        str(IMAGE_SIDE),
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv, cwd=REPO, env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        helpers.wait_until_ready(url, proc)
        yield url
    finally:
        helpers.stop_server(proc)


@pytest.fixture
def reward_service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real reward service (`python -m reward_service`: local Ray, Ray Serve on loopback); one test uses
    it, so it stops when that test ends instead of idling through the others."""
    port = helpers.free_port()
    log = tmp_path_factory.mktemp("reward_service") / "service.log"
    argv = [sys.executable, "-m", "reward_service", "--port", str(port), "--replicas", "1", "--num-cpus", "2"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv, cwd=REPO, env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"reward service exited with {proc.returncode}: {log.read_text()[-3000:]}")
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready after 300 s: {log.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        # SIGTERM to the service alone: it stops Serve and the Ray it started; then nothing of its group stays.
        with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=120)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


# -- runs -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("grpo_data")


def write_config(tmp_path: Path, *, protocol_dir: Path, rollout_url: str, data_cache: Path) -> Path:
    """A small dt_grpo run: 2 images x G=4 per step, 56x56 synthetic faces, 64 tokens per turn, fp32."""
    config = {
        "run": {"name": "grpo", "output_dir": str(tmp_path / "runs"), "seed": 0},
        "model": {
            "path": str(protocol_dir),
            "tiny_preset": None,
            "dtype": "float32",
            "cache_dir": str(tmp_path / "models"),
        },
        "data": {
            "protocol": "synth_cross_domain",
            "image_size": IMAGE_SIDE,
            "cache_dir": str(data_cache),
            "synthetic": {"n_per_domain": 40, "workers": 1},
        },
        "grpo": {
            "method": "dt_grpo",
            "init_from": "model",
            "num_generations": 4,
            "generation_batch_size": 8,
            "per_device_train_batch_size": 8,
            # Small enough that the protocol model keeps following its trajectory (groups keep differing
            # in reward); weight decay off, so a changed parameter means a non-zero policy gradient.
            "learning_rate": 1.0e-5,
            "weight_decay": 0.0,
            "max_steps": 4,
            "max_completion_length": 64,
            "save_steps": 1,
            "save_total_limit": None,
            "logging_steps": 1,
            "report_to": "none",
            "record_rollouts": True,
        },
        "rollout": {"mode": "server", "urls": [rollout_url], "request_timeout_s": 300},
        "reward_service": {"url": "inprocess"},
        "eval": {"max_samples": 8, "batch_size": 8, "final_answer": True},
    }
    path = tmp_path / "grpo_test.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_logged(argv: list[str], log: Path) -> subprocess.CompletedProcess:
    with log.open("w") as out:
        done = subprocess.run(
            argv, cwd=REPO, env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S
        )
    assert done.returncode == 0, f"{' '.join(argv)} exited with {done.returncode}:\n{tail(log)}"
    return done


def tail(log: Path, chars: int = 6000) -> str:
    return log.read_text(errors="replace")[-chars:]


def launcher(config: Path, *overrides: str) -> list[str]:
    return [str(REPO / "launch" / "grpo.py"), "--config", str(config), *overrides]


def step_logs(grpo_dir: Path) -> dict[int, dict]:
    """train_log.json's per-step entries (those with a loss), by global step."""
    log = json.loads((grpo_dir / "train_log.json").read_text())
    return {entry["step"]: entry for entry in log if "loss" in entry}


def server_version(url: str) -> int:
    return requests.get(url + "/readyz", timeout=10).json()["weights_version"]


def settled_version(url: str, timeout_s: float = 120.0) -> int:
    """The weights version once no request is in flight and it has held for a second: a run killed while
    pushing leaves its upload in the server, which applies it after the kill (CI once read the version
    before such an update landed, and the resumed run's versions came out one higher than expected)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        version = server_version(url)
        if version == last and rollout_queue_depth(url) == 0:
            return version
        last = version
        time.sleep(1.0)
    raise AssertionError(f"the rollout server's weights version did not settle in {timeout_s:.0f} s")


def rollout_queue_depth(url: str) -> float:
    return metric_value(scrape(url, token=helpers.TOKEN), "rollout_queue_depth")


def rollout_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def parameters(model_dir: Path) -> dict[str, torch.Tensor]:
    model, _ = load_policy(model_dir)
    return {name: p.detach().clone() for name, p in model.named_parameters()}


# -- 1. killed after a checkpoint, resumed ----------------------------------------------------------------

# Logged per-step values a resumed step must reproduce. The loss itself is ~1e-6 here (advantages have
# mean zero in every group), so grad_norm is the strong check; the others follow from identical episodes.
REPRODUCED = (
    "loss",
    "grad_norm",
    "reward",
    "reward_std",
    "entropy",
    "sampling/kl",
    "completions/mean_length",
)


@pytest.mark.slow
def test_killed_run_resumes_the_uninterrupted_losses(
    rollout_url: str, protocol_dir: Path, data_cache: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, protocol_dir=protocol_dir, rollout_url=rollout_url, data_cache=data_cache)
    runs = tmp_path / "runs"
    python = sys.executable

    run_logged([python, *launcher(config, "run.name=straight")], tmp_path / "straight.log")
    straight_dir = runs / "straight" / "grpo"
    straight = step_logs(straight_dir)
    assert sorted(straight) == [1, 2, 3, 4]
    # The comparison means something only if steps 3 and 4 trained on groups whose rewards differ.
    assert all(straight[s]["grad_norm"] > 0 for s in (3, 4)), [straight[s] for s in (3, 4)]
    assert all(straight[s]["frac_reward_zero_std"] < 1 for s in (3, 4))

    # The same run (same seed), killed with SIGKILL once checkpoint-2 is complete.
    resumed_dir = runs / "resumed" / "grpo"
    checkpoints = resumed_dir / "checkpoints"
    argv = [python, *launcher(config, "run.name=resumed")]
    with (tmp_path / "killed.log").open("w") as out:
        proc = subprocess.Popen(
            argv, cwd=REPO, env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not (checkpoints / "checkpoint-2").is_dir():
            assert proc.poll() is None, f"the run ended before checkpoint-2:\n{tail(tmp_path / 'killed.log')}"
            assert time.monotonic() < deadline, "no checkpoint-2 in time"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    left = sorted(p.name for p in checkpoints.iterdir() if p.name.startswith("checkpoint-"))
    assert left == ["checkpoint-1", "checkpoint-2"], left
    assert not (resumed_dir / "train_log.json").exists() and not (resumed_dir / "model").exists()

    version = settled_version(rollout_url)
    run_logged([*argv, "--resume"], tmp_path / "resume.log")
    resumed = step_logs(resumed_dir)
    assert sorted(resumed) == [1, 2, 3, 4]
    # The resumed run pushed checkpoint-2's weights before its first rollouts, and sampled from them.
    assert [resumed[s]["rollout/weights_version"] for s in (3, 4)] == [version + 1, version + 2]
    for step in (3, 4):
        for key in REPRODUCED:
            assert resumed[step][key] == pytest.approx(straight[step][key], abs=1e-5), (step, key)
        # abs=1e-5 alone would accept any gradient close enough in absolute terms: the gradient's norm must also
        # agree relatively (1.2229624 against 1.2229627 once). Not the loss: it is a residual of cancelling
        # float32 terms (~5e-6) that differs between two uninterrupted runs too (step 2, before any kill:
        # 1.61e-06 against 1.31e-06), while the gradient it comes from agrees to 1e-6.
        assert resumed[step]["grad_norm"] == pytest.approx(straight[step]["grad_norm"], rel=1e-4), step

    # The same seeded rollouts: every episode's turns, tool calls, rewards and advantage, and its images.
    for step in (3, 4):
        name = f"step_{step:06d}.jsonl"
        expected = rollout_lines(straight_dir / "rollouts" / name)
        got = rollout_lines(resumed_dir / "rollouts" / name)
        assert len(got) == len(expected) == 8
        for a, b in zip(got, expected, strict=True):
            assert {k: v for k, v in a.items() if k != "weights_version"} == {
                k: v for k, v in b.items() if k != "weights_version"
            }, (step, a["index"])
            for image in a["images"]:
                assert (resumed_dir / "rollouts" / image).read_bytes() == (
                    straight_dir / "rollouts" / image
                ).read_bytes()

    # And the same trained model.
    final, reference = parameters(resumed_dir / "model"), parameters(straight_dir / "model")
    assert final.keys() == reference.keys()
    worst = max((final[n] - reference[n]).abs().max().item() for n in final)
    assert worst <= 1e-6, worst


# -- 2. two gloo processes, one rollout server, one reward service ----------------------------------------


def reward_metrics(url: str) -> dict[str, float]:
    """The service's Prometheus counters that say it scored: rollouts scored, /v1/score requests."""
    text = scrape(url)
    return {
        "rollouts_scored": metric_value(text, "reward_service_rollouts_scored_total", default=0.0),
        "score_requests": metric_value(
            text, "reward_service_requests_total", default=0.0, endpoint="score", status="ok"
        ),
    }


@pytest.mark.slow
def test_two_gloo_processes_share_one_rollout_server_and_one_reward_service(
    rollout_url: str, reward_service_url: str, protocol_dir: Path, tmp_path: Path
) -> None:
    # A data cache of its own: the synthetic benchmark is generated under main_process_first, once.
    config = write_config(
        tmp_path, protocol_dir=protocol_dir, rollout_url=rollout_url, data_cache=tmp_path / "data"
    )
    before = reward_metrics(reward_service_url)
    version = server_version(rollout_url)
    argv = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",  # torchrun's path; without a GPU the processes use gloo (see the module docstring)
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        *launcher(
            config,
            "run.name=gloo",
            "grpo.max_steps=1",
            "grpo.per_device_train_batch_size=4",  # 2 processes x 4 = the generation batch of 8
            f"reward_service.url={reward_service_url}",
        ),
    ]
    log = tmp_path / "gloo.log"
    run_logged(argv, log)
    out = tmp_path / "runs" / "gloo" / "grpo"

    # Two ranks trained: the checkpoint holds each one's RNG state.
    checkpoint = out / "checkpoints" / "checkpoint-1"
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    generated = log.read_text(errors="replace").count("synth:   0%")  # the generator's progress bar
    assert generated == 1, f"the synthetic benchmark was generated {generated} times (once per process?)"
    steps = step_logs(out)
    assert sorted(steps) == [1]
    step = steps[1]
    assert math.isfinite(step["loss"]) and math.isfinite(step["reward"]) and math.isfinite(step["grad_norm"])
    assert step["rollout/weights_version"] == version + 1
    assert step["episodes/turns/mean"] > 1  # multi-turn episodes reached both ranks
    assert "reward_components/tool_diversity/mean" in step  # components come from the service's reply
    records = rollout_lines(out / "rollouts" / "step_000001.jsonl")
    assert len(records) == 8 and {r["index"] for r in records} == set(range(8))
    assert all(math.isfinite(r["reward"]) for r in records)
    assert all(r["domain"] == "studio" and r["attack_type"] for r in records)  # gathered from both ranks
    assert (out / "model" / "config.json").is_file() and (out / "metrics.json").is_file()

    # The service scored the step's 8 episodes, one request from each rank (its counters lag a little).
    deadline = time.monotonic() + 60
    while True:
        after = reward_metrics(reward_service_url)
        scored = after["rollouts_scored"] - before["rollouts_scored"]
        requests_made = after["score_requests"] - before["score_requests"]
        if (scored >= 8 and requests_made >= 2) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert scored >= 8 and requests_made >= 2, (before, after)


# -- 3. the shipped DeepSpeed configs, on two CPU processes -----------------------------------------------


def deepspeed_stage(checkpoint: Path) -> tuple[int, int]:
    """(ZeRO stage, ranks) recorded in a checkpoint's DeepSpeed optimizer states."""
    states = sorted(checkpoint.glob("global_step*/*optim_states.pt"))
    assert states, f"no DeepSpeed optimizer states in {checkpoint}"
    saved = torch.load(states[0], map_location="cpu", weights_only=False)
    return saved["ds_config"]["zero_optimization"]["stage"], len(states)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_shipped_deepspeed_config_trains_two_steps_on_the_cpu(
    stage: str, rollout_url: str, protocol_dir: Path, data_cache: Path, tmp_path: Path, shipped_cpu_config
) -> None:
    config = write_config(tmp_path, protocol_dir=protocol_dir, rollout_url=rollout_url, data_cache=data_cache)
    accelerate_config = shipped_cpu_config(stage)
    version = server_version(rollout_url)
    argv = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(accelerate_config),
        *launcher(config, f"run.name={stage}", "grpo.max_steps=2", "grpo.per_device_train_batch_size=4"),
    ]
    run_logged(argv, tmp_path / f"{stage}.log")
    out = tmp_path / "runs" / stage / "grpo"

    steps = step_logs(out)
    assert sorted(steps) == [1, 2]
    assert all(math.isfinite(steps[s]["loss"]) and steps[s]["grad_norm"] > 0 for s in (1, 2)), steps
    # Each step pushed the weights (gathered whole under ZeRO-3) and sampled from them.
    assert [steps[s]["rollout/weights_version"] for s in (1, 2)] == [version + 1, version + 2]
    assert server_version(rollout_url) >= version + 2
    # DeepSpeed ran at the shipped stage on both ranks.
    assert deepspeed_stage(out / "checkpoints" / "checkpoint-2") == ({"zero2": 2, "zero3": 3}[stage], 2)

    trained, initial = parameters(out / "model"), parameters(protocol_dir)
    assert trained.keys() == initial.keys()
    assert all(trained[n].shape == initial[n].shape for n in initial)  # whole weights, not ZeRO-3 shards
    changed = [n for n in initial if not torch.equal(trained[n], initial[n])]
    assert any("visual" in n for n in changed) and any("lm_head" in n for n in changed), changed


# -- 4. LoRA ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_lora_run_trains_the_adapter_and_serves_and_exports_merged_weights(
    rollout_url: str, protocol_dir: Path, data_cache: Path, tmp_path: Path
) -> None:
    """`grpo.use_lora=true`: the adapter trains the language model's projections only, every step pushes the
    merged weights to the rollout server, and the exported model is a plain merged model."""
    config = write_config(tmp_path, protocol_dir=protocol_dir, rollout_url=rollout_url, data_cache=data_cache)
    version = server_version(rollout_url)
    overrides = [
        "run.name=lora",
        "grpo.use_lora=true",
        "grpo.lora_rank=4",
        "grpo.learning_rate=1.0e-3",  # LoRA's B starts at zero: a visible merged change after two steps
        "grpo.max_steps=2",
    ]
    run_logged([sys.executable, *launcher(config, *overrides)], tmp_path / "lora.log")
    out = tmp_path / "runs" / "lora" / "grpo"

    steps = step_logs(out)
    assert sorted(steps) == [1, 2]
    assert all(math.isfinite(steps[s]["loss"]) and steps[s]["grad_norm"] > 0 for s in (1, 2)), steps
    assert [steps[s]["rollout/weights_version"] for s in (1, 2)] == [version + 1, version + 2]
    # Checkpoints hold the adapter, not a second copy of the model.
    checkpoint = out / "checkpoints" / "checkpoint-2"
    assert (checkpoint / "adapter_model.safetensors").is_file()
    assert not (checkpoint / "model.safetensors").exists()

    trained, initial = parameters(out / "model"), parameters(protocol_dir)
    assert trained.keys() == initial.keys()  # merged: no lora_A/lora_B, no base_layer
    changed = {n for n in initial if not torch.equal(trained[n], initial[n])}
    assert changed, "the merged model equals the base model"
    projection = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    outside = sorted(n for n in changed if "visual" in n or not any(p in n for p in projection))
    assert not outside, f"LoRA changed weights outside the language model's projections: {outside[:5]}"

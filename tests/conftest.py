"""Suite-wide settings: offline everywhere, no network beyond loopback, GPU tests skipped without CUDA."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "TOKENIZERS_PARALLELISM": "false",
}
os.environ.update(OFFLINE_ENV)
# Helper modules shared by every test folder (metrics_scrape.py); appended, so that a folder's own
# conftest.py, which its tests import by name, stays ahead of this one.
sys.path.append(str(Path(__file__).parent))


class NetworkBlocked(OSError):
    """Raised when a test tries to reach anything but this machine."""


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and abstract sockets
        return True
    host = str(address[0])
    if host in {"localhost", ""}:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS, i.e. the network


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise NetworkBlocked(f"test tried to reach {address!r}; tests may only use loopback addresses")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_local(address):
        raise NetworkBlocked(f"test tried to reach {address!r}; tests may only use loopback addresses")
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for the test: on a 2-core machine shared with other jobs, OpenMP threads spinning
    against each other make a CPU training step many times slower. Modules opt in with
    `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session", params=["qwen2_5_vl", "internvl3"])
def tiny_model_dir(request: pytest.FixtureRequest, model_cache: Path) -> Path:
    """A saved tiny model of each architecture, built once per session."""
    from rft.models.tiny import ensure_tiny_model

    return ensure_tiny_model(model_cache, request.param, "tiny")


@pytest.fixture(scope="session")
def tiny_benchmark() -> Path:
    """24 images of 64 px over both domains and all three splits: live, print, replay (studio), masks and
    partials (street). Generated once into .cache/ (about 10 s) and reused by later sessions; the
    generator writes atomically, so an interrupted generation leaves nothing half-written."""
    from rft.data.synth import generate_benchmark
    from rft.data.synth.generate import GENERATOR_VERSION

    out = Path(f".cache/test-data/synthetic-n12-seed5-64px-v{GENERATOR_VERSION}")
    if not (out / "summary.json").exists():
        generate_benchmark(out, 12, seed=5, image_size=64, workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def protocol_model_dir(model_cache: Path) -> Path:
    """A tiny Qwen2.5-VL that has memorised one paper-003 trajectory (tests/rollout_server/protocol_model.py),
    so that real sampling produces real multi-turn episodes; trained once per session."""
    from rft.models.tiny import ensure_tiny_model

    sys.path.insert(0, str(Path(__file__).parent / "rollout_server"))
    from protocol_model import train_protocol_model

    base = ensure_tiny_model(model_cache, "qwen2_5_vl", "tiny")
    return train_protocol_model(base, model_cache / "protocol-qwen2_5_vl")


REPO = Path(__file__).resolve().parents[1]


def cpu_accelerate_config(stage: str, out: Path) -> Path:
    """The shipped `deploy/accelerate/<stage>_8gpu.yaml` (stage zero2 or zero3) for two CPU processes: only
    use_cpu, num_processes and mixed_precision are changed, so tests run DeepSpeed as users configure it."""
    import yaml

    original = yaml.safe_load((REPO / "deploy" / "accelerate" / f"{stage}_8gpu.yaml").read_text())
    changed = {**original, "use_cpu": True, "num_processes": 2, "mixed_precision": "no"}
    out.write_text(yaml.safe_dump(changed))
    return out


@pytest.fixture
def shipped_cpu_config(tmp_path: Path):
    """`cpu_accelerate_config` writing into the test's tmp_path: `shipped_cpu_config("zero3")`."""
    return lambda stage: cpu_accelerate_config(stage, tmp_path / f"{stage}.yaml")


@pytest.fixture
def launch_on_two_cpus(tmp_path: Path, shipped_cpu_config):
    """Run a Python script under `accelerate launch` with a shipped DeepSpeed config on two CPU processes:
    `launch_on_two_cpus("zero3", script_text)` writes it to tmp_path/run.py, checks it exits 0, and returns
    the JSON the script wrote to tmp_path/result.json."""
    import json
    import subprocess
    import sys

    def launch(stage: str, script_text: str) -> dict:
        script = tmp_path / "run.py"
        script.write_text(script_text)
        command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
        command += [str(shipped_cpu_config(stage)), str(script)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads((tmp_path / "result.json").read_text())

    return launch


@pytest.fixture(scope="session")
def huge_png() -> str:
    """Base64 PNG of 9500x9500 black pixels: about 270 kB that decode to 270 MB (issue #14). Written row by
    row, so the test never holds the pixels either."""
    import base64
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    side = 9500
    compressor = zlib.compressobj(9)
    row = bytes(1 + 3 * side)  # filter byte 0, then RGB
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode("ascii")

"""A non-editable install works without the checkout: the wheel carries the configs, `rft --help` runs and a
config name resolves from the installed package, seen from a folder outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the wheel is built from (pyproject.toml's packages, and the readme it names).
SOURCES = ["pyproject.toml", "README.md", "rft", "rollout_server", "reward_service", "dashboard"]


def pip(*arguments: str | Path) -> None:
    # --isolated: no user or site pip configuration; nothing is downloaded (no deps, no build isolation).
    command = [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check", *map(str, arguments)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)


def build_and_install(tmp_path: Path) -> Path:
    """The wheel built from a copy of the sources (no build/ left in the checkout), installed with --target."""
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    pip("wheel", "--no-deps", "--no-build-isolation", "--quiet", "--wheel-dir", tmp_path / "wheels", source)
    (wheel,) = (tmp_path / "wheels").glob("fas_rft-*.whl")
    target = tmp_path / "target"
    pip("install", "--no-deps", "--no-index", "--quiet", "--target", target, wheel)
    return target


def run_outside(target: Path, cwd: Path, *arguments: str | Path) -> str:
    """Python without site (-S: no .pth file, so not the checkout's editable install) on the installed copy
    and the third-party packages only, from `cwd`."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])}
    command = [sys.executable, "-S", *map(str, arguments)]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_installed_package_runs_and_resolves_configs_outside_the_checkout(tmp_path):
    target = build_and_install(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert "commands:" in run_outside(target, elsewhere, target / "bin" / "rft", "--help")
    probe = (
        "import rft; from rft.config import load_config; print(rft.__file__); "
        "print(load_config('demo_cpu').run.name); "
        "print(load_config('experiments/dt_grpo/icm_to_o_qwen2_5_vl').grpo.method)"
    )
    installed_at, name, method = run_outside(target, elsewhere, "-c", probe).split()
    assert Path(installed_at).is_relative_to(target)
    assert (name, method) == ("demo_cpu", "dt_grpo")
    # The dashboard ships its page with it (package data), and `rft dashboard` is reachable.
    assert "RUNS_DIR" in run_outside(target, elsewhere, target / "bin" / "rft", "dashboard", "--help")
    assert (target / "dashboard" / "static" / "dashboard.js").is_file()

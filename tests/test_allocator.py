"""rft.allocator: on a CPU host glibc serves large allocations from the heap; elsewhere nothing changes.
Each check that tunes runs in a subprocess: the setting is the whole process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rft import allocator
from rft.allocator import DISABLE_ENV, keep_freed_memory

pytestmark = pytest.mark.skipif(allocator.glibc() is None, reason="glibc only")

# Mallocs 8 MiB and reports how many more bytes glibc then holds in mmapped chunks (mallinfo2's hblkhd): 8 MiB by
# default (a fresh process's mmap threshold is 128 KiB), 0 once tuned (the threshold is 32 MiB).
PROBE = """
import ctypes, json, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
applied = None
if sys.argv[1] == "tune":
    from rft.allocator import keep_freed_memory
    applied = keep_freed_memory(on_cpu_host=True)
before = libc.mallinfo2().hblkhd
block = libc.malloc(8 << 20)
mapped = libc.mallinfo2().hblkhd - before
libc.free(block)
print(json.dumps({"applied": applied, "mapped": mapped}))
"""


def probe(tmp_path: Path, mode: str) -> dict:
    """The probe's report, run in a fresh process without the user's allocator settings."""
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", DISABLE_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, check=True, env=env
    ).stdout
    return json.loads(out)


def test_large_allocations_come_from_the_heap_once_tuned(tmp_path: Path) -> None:
    untuned = probe(tmp_path, "plain")
    assert untuned["mapped"] >= 8 << 20  # the probe sees what the setting changes
    assert probe(tmp_path, "tune") == {"applied": True, "mapped": 0}


def test_a_gpu_host_and_the_users_own_settings_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # None of these reaches mallopt, so this process's allocator is untouched.
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    assert keep_freed_memory(on_cpu_host=False) is False
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert keep_freed_memory(on_cpu_host=True) is False
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv(DISABLE_ENV, "0")
    assert keep_freed_memory(on_cpu_host=True) is False

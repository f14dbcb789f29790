"""glibc's allocator on a CPU host: keep freed memory in the process instead of handing it back.

A training step on the CPU allocates and frees the same few hundred tensors every step. By default glibc
serves the larger ones with fresh `mmap`s (its threshold moves between 128 KiB and 32 MiB as chunks are
freed) and hands the top of the heap back to the OS once 128 KiB or more of it is free, so a step faults its
pages in again, zeroed by the kernel. How much of that a run does varies: 80 steps of the demo's SFT stage 2
took 37 s or 52 s on the same host and data, the slow run with 21 s in the kernel (docs/PERFORMANCE.md,
"glibc's allocator"). With allocations below 32 MiB served from the heap and up to 1 GiB of freed memory
kept, every tuned run of the comparison was a fast one; the arithmetic is untouched (the exported model is
identical to the byte). The price is memory: the heap keeps what it freed; the whole demo peaked at
2.4-5.8 GB instead of 2.3 GB.

The launchers that train on the CPU (demo, SFT, ablation) call it when run as scripts, so it covers the
whole process and nothing that imports them. Applied only on CPU hosts: on a GPU node the host's memory
holds checkpoints being loaded, data loaders and offloaded optimizer states, where nothing was measured.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt(3) parameters.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

# glibc's largest: below it from the heap; above it mmapped and handed back when freed.
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30  # freed memory at the heap's top kept up to 1 GiB
TOP_PAD = 256 << 20  # the heap grows 256 MiB at a time
DISABLE_ENV = "RFT_KEEP_FREED_MEMORY"


def keep_freed_memory_on_cpu_host() -> bool:
    """`keep_freed_memory` where no CUDA device is visible; True when it tuned the allocator."""
    from rft.models.vllm_engine import on_cpu_host

    return keep_freed_memory(on_cpu_host=on_cpu_host())


def keep_freed_memory(on_cpu_host: bool) -> bool:
    """Tune this process's glibc allocator to serve allocations below 32 MiB from the heap and keep freed
    memory; True when it did. Does nothing on a GPU host, off glibc, where GLIBC_TUNABLES is set (the user's own
    allocator settings win), or with RFT_KEEP_FREED_MEMORY=0."""
    if not on_cpu_host or os.environ.get(DISABLE_ENV) == "0" or "GLIBC_TUNABLES" in os.environ:
        return False
    libc = glibc()
    if libc is None:
        return False
    return all(
        libc.mallopt(param, value) == 1
        for param, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (M_TOP_PAD, TOP_PAD),
        )
    )


def glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (mallopt's parameters are glibc's), else None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    try:
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
    except AttributeError:
        return None
    return libc

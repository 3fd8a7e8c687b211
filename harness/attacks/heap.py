"""Keep freed memory in the process's heap, so that an attack's per-iteration tensors reuse their pages.

A CPU attack allocates and frees (m, width) tensors on every iteration. glibc hands large freed blocks
back to the operating system (munmap above its mmap threshold, heap trimming above its trim threshold,
both moving with the process's history), and each new tensor then page-faults its memory back in: on a
384-1000-1 head at m = 1000 that was anywhere from 0 to 5000 page faults per iteration from one process to
the next, and the iteration 1.3-1.6x slower when they hit (docs/scale.md). Fixing both thresholds high
keeps the blocks: the peak memory is the same, but the process holds it until it exits.

Applied once per process, when the first attack is built, on Linux with glibc only (elsewhere a no-op).
RECON_HARNESS_KEEP_FREED_MEMORY=0 leaves the allocator's defaults.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
MMAP_THRESHOLD = 32 << 20  # blocks below 32 MiB (glibc's ceiling for this setting) come from the heap
TRIM_THRESHOLD = 2**31 - 1  # and freed heap memory is trimmed only past 2 GiB (mallopt takes an int)

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set the thresholds (once); whether they are in force."""
    global _applied
    if _applied is None:
        _applied = _set_thresholds()
        log.debug("heap: keep freed memory: %s", _applied)
    return _applied


def _set_thresholds() -> bool:
    if os.environ.get("RECON_HARNESS_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return ok and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1

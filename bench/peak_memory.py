"""Peak memory of a block of work: CUDA's max allocated where the work runs on a GPU, else the
process's resident set (RSS) sampled by a thread every few milliseconds (torch releases the GIL)."""

from __future__ import annotations

import ctypes
import os
import threading
import time

import torch

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _trim() -> None:
    """Give the C heap's free memory back to the OS (glibc), so that RSS counts live memory only."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """with PeakMemory(cuda) as pm: ...  then pm.peak_mib (highest RSS or CUDA allocation during the
    block) and pm.extra_mib (above what was held when the block started)."""

    def __init__(self, cuda: bool | None = None, every_s: float = 0.005):
        self.cuda = torch.cuda.is_available() if cuda is None else cuda
        self.every_s = every_s
        self.start = self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakMemory":
        self.reset()
        if not self.cuda:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def reset(self) -> None:
        """Start over from now: what is held now becomes the start, the peak forgets what came before."""
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            _trim()
            self.start = self.peak = rss_bytes()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.every_s)

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())

    @property
    def kind(self) -> str:
        return "CUDA max allocated" if self.cuda else "RSS"

    @property
    def peak_mib(self) -> float:
        return self.peak / 2**20

    @property
    def extra_mib(self) -> float:
        return (self.peak - self.start) / 2**20

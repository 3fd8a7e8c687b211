"""How many CPU cores are free right now: what `--threads auto` gives torch."""

from __future__ import annotations

import os
import time
from pathlib import Path

STAT = Path("/proc/stat")


CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # a container's CPU quota (cgroup v2): "QUOTA PERIOD", or "max PERIOD"


def usable_cores() -> int:
    """Cores this process may run on: its affinity mask (where the OS has one), within a container's CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cpu_quota(CPU_MAX)
    return max(1, min(cores, quota)) if quota else cores


def cpu_quota(path: Path) -> int | None:
    """Whole cores a cgroup v2 `cpu.max` allows (rounded up), None where there is no quota or no such file."""
    try:
        limit, period = path.read_text().split()[:2]
        return None if limit == "max" else -(-int(limit) // int(period))
    except (OSError, ValueError):
        return None


def cpu_times(text: str) -> tuple[int, int]:
    """(busy, total) jiffies from the aggregate `cpu` line of /proc/stat (idle and iowait count as free)."""
    fields = [int(v) for v in text.splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    return total - fields[3] - fields[4], total


def busy_cores(sample_s: float = 0.3) -> float:
    """Cores the whole machine keeps busy: /proc/stat sampled `sample_s` apart, else the 1-minute load average."""
    try:
        b0, t0 = cpu_times(STAT.read_text())
        time.sleep(sample_s)
        b1, t1 = cpu_times(STAT.read_text())
        return (b1 - b0) / max(t1 - t0, 1) * (os.cpu_count() or 1)
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def free_cores(sample_s: float = 0.3) -> int:
    """Usable cores less the busy ones, at least 1."""
    cores = usable_cores()
    return max(1, min(cores, int(cores - busy_cores(sample_s) + 0.5)))

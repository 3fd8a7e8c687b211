"""Find and end the processes of one Ray head started with `ray start --temp-dir DIR`, by pid.

Never `ray stop`: that ends every Ray process on the machine, not just the head we started.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def procs() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line), from /proc."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                out[int(d.name)] = (ppid, cmd)
            except (OSError, ValueError, IndexError):
                continue
    return out


def head_pids(temp_dir: str) -> set[int]:
    """The processes of this head: those naming its temp dir, and all their descendants."""
    table = procs()
    pids = {pid for pid, (_, cmd) in table.items() if temp_dir in cmd and pid != os.getpid()}
    while True:
        more = {pid for pid, (ppid, _) in table.items() if ppid in pids} - pids
        if not more:
            return pids
        pids |= more


def stop_head(temp_dir: str, wait_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL, the head's processes; wait up to `wait_s` after each for them to go."""
    pids = head_pids(temp_dir)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
            time.sleep(0.2)

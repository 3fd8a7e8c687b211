"""One process writes to a results directory at a time (a sweep, or a run): an advisory lock with the holder in it."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.store.store import LOCK, make_results_dir
_HELD: dict[Path, list] = {}  # lock file this process holds -> [holders (a sweep's CLI and its driver), fd, made its dir]


class StoreLock:
    """`with StoreLock(out, "run"):` refuses in one line while another process writes to `out`. Re-entrant within a
    process. A directory that holds nothing but the lock when it is released is left as it was found (gone, if the
    lock made it), so a run refused after taking it leaves nothing behind."""

    def __init__(self, root: Path, verb: str = "sweep"):
        self.path = Path(root).absolute() / LOCK
        self.verb = verb

    def __enter__(self) -> "StoreLock":
        if self.path in _HELD:
            _HELD[self.path][0] += 1
            return self
        made_dir = not self.path.parent.exists()
        fd = self._lock()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"verb": self.verb, "pid": os.getpid(), "host": socket.gethostname(),
                                  "argv": " ".join(sys.argv[1:])[:200]}).encode(), 0)
        _HELD[self.path] = [1, fd, made_dir]
        return self

    def _lock(self) -> int:
        """The lock file's descriptor, locked. A holder that wrote nothing removes the file as it lets go, so a lock
        taken on a file no longer at the path (opened just before that removal) is let go and taken again."""
        while True:
            make_results_dir(self.path.parent)  # the lock comes first: the folder is made here, its owner's alone
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                held = os.pread(fd, 4096, 0).decode(errors="replace").strip()
                os.close(fd)
                raise HarnessError(
                    "--out", str(self.path.parent), f"another recon-harness process is writing here ({_holder(held)}); "
                    "wait for it, or use another --out",
                ) from None
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def __exit__(self, *exc) -> None:
        held = _HELD[self.path]
        held[0] -= 1
        if held[0]:
            return
        del _HELD[self.path]
        _, fd, made_dir = held
        os.ftruncate(fd, 0)
        if [p.name for p in self.path.parent.iterdir()] == [LOCK]:  # nothing written: leave no trace
            self.path.unlink(missing_ok=True)
            if made_dir:
                try:
                    self.path.parent.rmdir()
                except OSError:  # another process's lock file appeared there since
                    pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _holder(held: str) -> str:
    """Who holds the lock, in words: `sweep (pid 123 on host): recon-harness sweep s.yaml --out o` (the lock file's
    JSON), or the file's text as it is when it is not that."""
    try:
        h = json.loads(held)
        return f"{h['verb']} (pid {h['pid']} on {h['host']})" + (f": recon-harness {h['argv']}" if h.get("argv") else "")
    except (ValueError, KeyError, TypeError):
        return held or "another process"

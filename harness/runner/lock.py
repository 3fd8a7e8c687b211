"""One sweep writes to a results directory at a time: an advisory lock with the holder's name in it."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from harness.errors import HarnessError

LOCK = "_sweep.lock"


class StoreLock:
    def __init__(self, root: Path):
        self.path = Path(root) / LOCK
        self.fd: int | None = None

    def __enter__(self) -> "StoreLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise HarnessError(
                "out", str(self.path.parent), f"another sweep is writing here ({holder}); wait for it, or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

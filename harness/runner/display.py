"""The driver's progress line: shards done / in flight / failed, units done / skipped / failed, ETA."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from harness.progress import bar


@dataclass
class Counts:
    units_total: int = 0
    units_done: int = 0  # computed (finished) in this run
    units_skipped: int = 0  # already finished in the store
    units_failed: int = 0
    shards_total: int = 0  # shards this run has to compute (every unfinished unit's, less those found in the store)
    shards_run: int = 0  # computed and written in this run
    shards_reused: int = 0  # found in the store from an earlier run
    shards_failed: int = 0
    in_flight: int = 0

    @property
    def ok(self) -> bool:
        return self.units_failed == 0


class Display:
    def __init__(self, counts: Counts, enabled: bool):
        self.c = counts
        self.bar = bar(total=0, desc="shards", unit="shard", disable=not enabled, leave=True)
        self.every = 0.2 if sys.stderr.isatty() else 30.0  # logs (cron, ray job logs) get a line now and then
        self.last = 0.0

    def update(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        c = self.c
        self.bar.total = max(c.shards_total, 1)
        self.bar.n = c.shards_run + c.shards_failed
        self.bar.set_postfix_str(
            f"in flight {c.in_flight}, failed {c.shards_failed} | units {c.units_done + c.units_skipped}/{c.units_total}"
            f" done ({c.units_skipped} skipped), {c.units_failed} failed",
            refresh=False,
        )
        self.bar.refresh()

    def close(self) -> None:
        self.update(force=True)
        self.bar.close()

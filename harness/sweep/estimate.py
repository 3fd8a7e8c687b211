"""What a plan will ask of the cluster (for --dry-run): units, shards, and CPU/GPU needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from harness.store.adopt import DoneWork
from harness.store.store import ResultStore
from harness.sweep.plan import SweepPlan


@dataclass
class Estimate:
    rows: dict[tuple[str, str], dict] = field(default_factory=dict)  # (card, task) -> counts
    units: int = 0
    done: int = 0
    renamed: int = 0  # of `done`: under the ids an older release gave them (the sweep renames them)
    unresolved: int = 0
    shards: int = 0
    reused: int = 0  # stored shards a run will reuse (not in `shards`)
    shard_budget_s: float = 0.0  # sum of time budgets, where the attack declares one

    def cpu_hours(self, cpus: float) -> float:
        return self.shard_budget_s * cpus / 3600

    def gpu_hours(self, gpus: float) -> float:
        return self.shard_budget_s * gpus / 3600


def estimate(plan: SweepPlan, store: ResultStore | None, reusable: Callable | None = None) -> Estimate:
    """`reusable(store, planned_unit)`: how many of an unfinished unit's shards the store holds for reuse (dry-run); without
    it every shard of an unfinished unit counts (the driver takes the reused ones off as it admits each unit)."""
    est = Estimate()
    stored = DoneWork(store) if store is not None else None  # read once, not once per unit
    for pu in plan.units():
        key = (pu.unit.card.name, pu.unit.task.name)
        row = est.rows.setdefault(key, {"units": 0, "done": 0, "shards": 0, "shards_per_unit": len(pu.jobs())})
        done = store is not None and store.has("victims", pu.unit_id)
        if store is not None and not done and pu.error is None:  # done under an older release's id: adopted, not run
            done = stored.same_work(pu.unit_id, pu.unit.settings()) is not None
            est.renamed += done
        row["units"] += 1
        row["done"] += done
        est.units += 1
        est.done += done
        est.unresolved += pu.error is not None
        if not done:
            reused = reusable(store, pu) if reusable and store is not None else 0
            row["shards"] += len(pu.jobs()) - reused
            est.shards += len(pu.jobs()) - reused
            est.reused += reused
            budget = pu.unit.task.attack.params.get("time_budget_s")
            est.shard_budget_s += float(budget or 0) * len(pu.jobs())
    return est

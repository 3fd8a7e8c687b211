"""Where the work runs on Ray: a backbone actor per (backbone, device), stage tasks with their resources."""

from __future__ import annotations

import socket
import time

import pyarrow as pa
import ray

from harness.pipeline.rows import provenance
from harness.runner.tables import result_of, shard_table
from harness.store.schemas import SCHEMAS
from harness.sweep.shards import merge


def threads_for(assigned: dict) -> int:
    """torch CPU threads for a Ray task or actor: the CPUs Ray assigned it (its `num_cpus`), at least 1."""
    return max(1, int(assigned.get("CPU", 0) or 0))


def set_threads() -> int:
    """Set torch's CPU threads from this task's or actor's Ray `num_cpus` (the sweep spec's `resources`).

    A Ray worker process is reused by tasks of different sizes, and torch's own default (one thread
    per core of the node) oversubscribes a node that runs several tasks at once."""
    import torch

    n = threads_for(ray.get_runtime_context().get_assigned_resources())
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


@ray.remote
class BackboneActor:
    """Loads its backbone once and serves every unit that embeds with it."""

    def __init__(self, stages):
        set_threads()
        self.stages, self.state = stages, {}

    @ray.method(num_returns=2)
    def prepare(self, unit, base_dir, cache_dir):
        """(a small 'ok' to wait on, the prepared unit that later tasks take by reference)."""
        return "ok", self.stages.prepare(self.state, unit, base_dir, cache_dir)


@ray.remote
def train_task(stages, unit, prep, kinds):
    set_threads()
    return stages.train(unit, prep, kinds)


@ray.remote
def shard_task(stages, unit, prep, trained, kind, job, request):
    """One restart group; returns its row (with provenance), ready to be written by the driver."""
    set_threads()
    t0 = time.perf_counter()
    result = stages.shard(unit, prep, trained, kind, job)
    compute_s = time.perf_counter() - t0
    return shard_table(provenance(unit, prep.source), kind, job, result, compute_s, request, socket.gethostname())


@ray.remote
def finish_task(stages, unit, prep, trained, head_paths, shard_tables: dict):
    """Merge each victim's shards in order, score, and build the unit's tables."""
    set_threads()
    dim = prep.emb.dim if hasattr(prep, "emb") else 0
    results = {
        kind: merge([result_of(t, dim, unit.task.attack.params) for t in ray.get(refs)], dict(unit.task.attack.params))
        for kind, refs in shard_tables.items()
    }
    rows = stages.finish(unit, prep, trained, head_paths, results)
    return {name: pa.Table.from_pylist(r, schema=SCHEMAS[name]) for name, r in rows.items()}


def make_actor(stages, request: dict, retries: int):
    return BackboneActor.options(**request, max_restarts=retries, max_task_retries=retries).remote(stages)


def options(request: dict, retries: int) -> dict:
    return {**request, "max_retries": retries, "retry_exceptions": False}

"""The sweep driver: streams units through Ray with bounded in-flight work, writes each result at once.

Per unit: prepare (backbone actor) -> train (task) -> shards (tasks, written as they finish) -> finish
(task: merge, score, rows; the victims file, written last, marks the unit done). Anything a rerun finds
in the store (finished units, trained heads, finished shards) is reused unless `force`.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import ray

from harness.runner import remote
from harness.runner.display import Counts, Display
from harness.runner.lock import StoreLock
from harness.runner.resume import done_shards, load_trained, save_trained
from harness.runner.tables import failure_table, read_file
from harness.runner.work import REAL, Stages
from harness.pipeline.write import write_unit
from harness.store.store import ResultStore
from harness.store.supersede import StoredWork
from harness.sweep.estimate import estimate
from harness.sweep.plan import PlannedUnit, SweepPlan



@dataclass
class Options:
    out: Path
    cache_dir: str | None = None
    force: bool = False
    max_in_flight: int = 8
    progress: bool = True
    on_event: Callable[[str, dict], None] | None = None


@dataclass
class UnitRun:
    pu: PlannedUnit
    prep_ok: Any = None
    prep: Any = None
    trained: Any = None
    head_paths: dict = field(default_factory=dict)
    todo: deque = field(default_factory=deque)
    shard_refs: dict = field(default_factory=dict)  # (kind, index) -> ref, or a Path written earlier
    reused: int = 0  # shards found in the store when the unit was admitted
    shards_ended: int = 0  # shards this run computed or saw fail
    busy: int = 0  # tasks of this unit in flight
    failed: bool = False
    failed_at: str = ""  # the stage that failed first
    trained_ready: bool = False
    finishing: bool = False
    finished: bool = False


class SweepDriver:
    def __init__(self, plan: SweepPlan, opts: Options, stages: Stages = REAL):
        self.plan, self.opts, self.stages = plan, opts, stages
        self.spec = plan.spec
        self.store = ResultStore(opts.out)
        self.counts = Counts(units_total=plan.n_units)
        self.active: dict[str, UnitRun] = {}
        self.inflight: dict[Any, tuple[str, str, Any, float]] = {}
        self.actors: dict[tuple, Any] = {}
        self.req = {k: getattr(self.spec.resources, k).ray_options() for k in ("embed", "train", "shard", "finish")}
        self.failures: list[dict] = []  # (one line each) for the summary
        self._stored: StoredWork | None = None

    @property
    def stored(self) -> StoredWork:
        """The store's units by their work, read once (after the sweep adopted and retired what it found)."""
        if self._stored is None:
            self._stored = StoredWork(self.store)
        return self._stored

    # ---- bookkeeping -------------------------------------------------------------------------
    def _emit(self, event: str, **info) -> None:
        if self.opts.on_event:
            self.opts.on_event(event, info)

    def _submit(self, ur: UnitRun, what: str, ref, payload=None) -> None:
        self.inflight[ref] = (ur.pu.unit_id, what, payload, time.perf_counter())
        ur.busy += 1

    def _fail(self, ur: UnitRun | PlannedUnit, stage: str, exc: BaseException, kind=None, shard=None) -> None:
        pu = ur.pu if isinstance(ur, UnitRun) else ur
        from harness.pipeline.rows import provenance

        base = provenance(pu.unit, "unknown")
        part = stage if kind is None else f"{stage}-{kind}-s{shard:04d}"
        tbl = failure_table(base, stage, exc, kind, shard)
        self.store.write("failures", pu.unit_id, tbl, part)
        self.stored.retire(self.store, pu.unit_id)  # the same work failed under an older release's id: listed once
        row = tbl.to_pylist()[0]
        self.failures.append({"unit_id": pu.unit_id, "stage": part, "error": f"{row['error_type']}: {row['message']}"})
        self._emit("failure", unit_id=pu.unit_id, stage=stage, kind=kind, shard=shard)
        if isinstance(ur, UnitRun) and not ur.failed:
            ur.failed, ur.failed_at = True, stage

    # ---- admission ---------------------------------------------------------------------------
    def _actor(self, pu: PlannedUnit):
        key = (pu.unit.card.id, pu.unit.revision)
        for old in [k for k in self.actors if k != key and not any(self._key(u) == k for u in self.active.values())]:
            ray.kill(self.actors.pop(old))  # units are card-major: that backbone is not needed again
        if key not in self.actors:
            self.actors[key] = remote.make_actor(self.stages, self.req["embed"], self.spec.retries)
        return self.actors[key]

    @staticmethod
    def _key(ur: UnitRun) -> tuple:
        return (ur.pu.unit.card.id, ur.pu.unit.revision)

    def _admit(self, pu: PlannedUnit) -> None:
        uid, force = pu.unit_id, self.opts.force
        if not force and self.store.has("victims", uid):
            self.counts.units_skipped += 1
            self._emit("skip", unit_id=uid)
            return
        if pu.error:
            self._fail(pu, "resolve", RuntimeError(pu.error))
            self.counts.units_failed += 1
            self.counts.shards_total -= len(pu.jobs())
            return
        if force:  # recomputed from scratch: until its rows are written again the unit is not done, nor are its
            self.store.remove_unit("victims", uid)  # shards reusable (an interrupted --force
            self.store.remove_parts("shards", uid)  # left new heads beside old rows, and a resume took it as done)
        ur = UnitRun(pu)
        self.active[uid] = ur
        ur.prep_ok, ur.prep = self._actor(pu).prepare.remote(pu.unit, pu.base_dir, self.opts.cache_dir)
        self._submit(ur, "prepare", ur.prep_ok)
        loaded = None if force else load_trained(self.store.root, uid, pu.kinds)
        jobs = pu.jobs()
        if loaded is None:
            opts = remote.options(self.req["train"], self.spec.retries)
            self._submit(ur, "train", remote.train_task.options(**opts).remote(self.stages, pu.unit, ur.prep, pu.kinds))
            return
        trained, ur.head_paths = loaded
        ur.trained, ur.trained_ready = ray.put(trained), True
        done = done_shards(self.store, uid, jobs)
        for kind, job in jobs:
            if (kind, job.index) in done:
                ur.shard_refs[(kind, job.index)] = self.store.path("shards", uid, f"{kind}-{job.part}")
            else:
                ur.todo.append((kind, job))
        ur.reused = len(done)
        self.counts.shards_reused += len(done)
        self.counts.shards_total -= len(done)

    # ---- completions -------------------------------------------------------------------------
    def _on_ready(self, ref) -> None:
        uid, what, payload, t_submit = self.inflight.pop(ref)
        ur = self.active[uid]
        ur.busy -= 1
        ur.shards_ended += what == "shard"
        try:
            value = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - any stage error becomes a failures row
            if what == "shard":
                self.counts.shards_failed += 1
            if ur.failed_at in ("prepare", "train"):
                return  # what depends on a failed preparation or training fails with it: one row is enough
            if what == "shard":
                self._fail(ur, "shard", exc, payload[0], payload[1].index)
            else:
                self._fail(ur, what, exc)
            return
        if what == "train":
            ur.head_paths = save_trained(self.store.root, ur.pu.unit, value)
            ur.trained, ur.trained_ready = ref, True
            ur.todo.extend(ur.pu.jobs())
        elif what == "shard":
            kind, job = payload
            self.store.write("shards", uid, value, f"{kind}-{job.part}")
            ur.shard_refs[(kind, job.index)] = ref
            self.counts.shards_run += 1
            compute = value.column("compute_s")[0].as_py()
            self._emit("shard", unit_id=uid, kind=kind, shard=job.index, submitted=t_submit,
                       written=time.perf_counter(), compute_s=compute)
        elif what == "finish":
            # the shards of this plan's jobs are these rows' source; others (a run cut into more of them) are not
            write_unit(self.store, uid, value, [f"{kind}-{job.part}" for kind, job in ur.pu.jobs()], self.stored)
            ur.finished = True
            self.counts.units_done += 1
            self._emit("unit", unit_id=uid)

    def _settle(self, ur: UnitRun) -> None:
        """Submit the finish once every shard is in; drop a unit with nothing left to do."""
        if ur.busy or ur.todo:
            return
        if ur.failed or ur.finished:
            self.counts.units_failed += ur.failed
            if ur.failed:  # the shards it will not run leave the total, so that the bar still ends at its total
                self.counts.shards_total -= len(ur.pu.jobs()) - ur.reused - ur.shards_ended
            del self.active[ur.pu.unit_id]
            return
        if not ur.trained_ready or ur.finishing:
            return
        tables = {}
        for kind, job in ur.pu.jobs():
            got = ur.shard_refs[(kind, job.index)]
            tables.setdefault(kind, []).append(ray.put(read_file(got, "shards")) if isinstance(got, Path) else got)
        opts = remote.options(self.req["finish"], self.spec.retries)
        ref = remote.finish_task.options(**opts).remote(self.stages, ur.pu.unit, ur.prep, ur.trained, ur.head_paths, tables)
        ur.finishing = True
        self._submit(ur, "finish", ref)

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> Counts:
        # every unfinished unit's shards, known before the first unit is admitted (a total that grew as units came
        # in made the bar fall back, 92% to 75%); an admitted unit takes off the shards the store already holds
        self.counts.shards_total = estimate(self.plan, None if self.opts.force else self.store).shards
        display = Display(self.counts, self.opts.progress)
        units = self.plan.units()
        exhausted = False
        with StoreLock(self.store.root):
            while True:
                limit = self.opts.max_in_flight
                while not exhausted and len(self.active) < limit and len(self.inflight) < limit:
                    pu = next(units, None)
                    if pu is None:
                        exhausted = True
                    else:
                        self._admit(pu)
                for ur in list(self.active.values()):
                    while ur.todo and not ur.failed and len(self.inflight) < limit:
                        kind, job = ur.todo.popleft()
                        opts = remote.options(self.req["shard"], self.spec.retries)
                        ref = remote.shard_task.options(**opts).remote(
                            self.stages, ur.pu.unit, ur.prep, ur.trained, kind, job, self.req["shard"]
                        )
                        self._submit(ur, "shard", ref, (kind, job))
                    if ur.failed:
                        ur.todo.clear()
                for ur in list(self.active.values()):
                    self._settle(ur)
                if exhausted and not self.active:
                    break
                if self.inflight:
                    ready, _ = ray.wait(list(self.inflight), num_returns=1, timeout=0.5)
                    ready += ray.wait(list(self.inflight), num_returns=len(self.inflight), timeout=0)[0]
                    for ref in dict.fromkeys(ready):
                        self._on_ready(ref)
                self.counts.in_flight = sum(1 for v in self.inflight.values() if v[1] == "shard")
                display.update()
            for actor in self.actors.values():
                ray.kill(actor)
            self.actors.clear()
        display.close()
        return self.counts

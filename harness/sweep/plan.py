"""Plan a sweep: cards x tasks x grid -> units (stable content-hash ids) and their attack shards."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from harness.attacks import make_attack
from harness.classifiers.task import checkpoint_task
from harness.errors import HarnessError
from harness.data.source import data_digest, local_path, pin_hub_data
from harness.pipeline.plan import Unit, check_trained_head, resolve_attack
from harness.registry import MODELS, TASKS
from harness.specs.loading import parse
from harness.specs.model_card import ModelCard
from harness.specs.task import TaskSpec
from harness.sweep import grid as G
from harness.sweep.hub import pin_revision, query_cards
from harness.sweep.shards import ShardJob, shard_jobs
from harness.sweep.spec import SweepSpec


@dataclass(frozen=True)
class PlannedUnit:
    unit: Unit
    base_dir: str | None  # relative data paths in the task follow its file
    shards: tuple[ShardJob, ...]
    kinds: tuple[str, ...]  # victims: real (+ null)
    error: str | None = None  # the card could not be resolved: recorded as a failure, not run

    @property
    def unit_id(self) -> str:
        return self.unit.unit_id

    def jobs(self) -> list[tuple[str, ShardJob]]:
        return [(k, s) for k in self.kinds for s in self.shards]


@dataclass
class SweepPlan:
    spec: SweepSpec
    cards: list[tuple[ModelCard, str, str | None]]  # card, pinned revision, resolve error
    tasks: list[tuple[TaskSpec, str | None]]  # task, base dir
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (card index, task index) that match
    hub_api: object = None  # the Hub client that pins Hub data sets (tests give a fake)
    pins: dict = field(default_factory=dict)  # (Hub data set, revision) -> commit: once per plan, however often units() runs

    @property
    def n_units(self) -> int:
        return len(self.pairs) * G.grid_size(self.spec.grid)

    def units(self) -> Iterator[PlannedUnit]:
        """Streamed, never all in memory: card-major, so one backbone's units come together."""
        digests: dict = {}  # one digest per data set in a plan, not one per unit (a folder of images is many files)
        for ci, ti in self.pairs:
            card, revision, error = self.cards[ci]
            task, base_dir = self.tasks[ti]
            for overrides in G.combos(self.spec.grid):
                t = G.apply(task, overrides, self.spec.name)
                if t.data.format == "hub":  # after the grid, which may set data.source or data.revision
                    at = (t.data.source, t.data.revision)
                    if at not in self.pins:
                        self.pins[at] = pin_hub_data(t.data, self.hub_api).revision
                    t = t.model_copy(update={"data": t.data.model_copy(update={"revision": self.pins[at]})})
                t = resolve_attack(checkpoint_task(t) if card.is_classifier else t, card)
                params = make_attack(t.attack.name, t.attack.params).params
                jobs = tuple(shard_jobs(getattr(params, "restarts", 1), self.spec.restarts_per_shard, params.seed))
                kinds = ("real", "null") if t.null_victim else ("real",)
                key = (t.data.format, t.data.source, base_dir)
                if key not in digests:
                    digests[key] = data_digest(t.data, base_dir)
                yield PlannedUnit(Unit(t, card, revision, data_digest=digests[key]), base_dir, jobs, kinds, error)


def _lookup(registry, ref: str, sweep_dir: Path):
    """A spec by name/Hub id, or by a path relative to the sweep file (then the working directory)."""
    local = sweep_dir / ref
    if ref.endswith((".yaml", ".yml")) and local.is_file():
        return registry.load_file(local), local.resolve().parent
    spec = registry.get(ref)
    path = Path(ref) if Path(ref).is_file() else registry.files().get(ref)
    return spec, (path.resolve().parent if path else None)


def plan_sweep(spec: SweepSpec, sweep_file: str | Path | None = None, hub_api=None) -> SweepPlan:
    """Every name checked and every revision pinned before any work; bad input is one HarnessError."""
    where = Path(sweep_file).resolve().parent if sweep_file else Path.cwd()
    for key in spec.grid:
        G.check_key(key)
    cards = [_lookup(MODELS, m, where)[0] for m in spec.models]
    for q in spec.hub:
        cards += query_cards(q, hub_api)
    seen, unique = set(), []
    for c in cards:
        if (c.id, c.revision) not in seen:
            seen.add((c.id, c.revision))
            unique.append(c)
    tasks = []
    for i, t in enumerate(spec.tasks):
        if isinstance(t, dict):  # inline: relative data paths follow the sweep file
            task, base = parse(TaskSpec, {"name": f"{spec.name}-task{i}", **t}, f"{spec.name}: tasks[{i}]"), where
        else:
            task, base = _lookup(TASKS, t, where)
        tasks.append((task, str(base) if base else None))
    for task, base in tasks:  # every unit of a task whose data is not there would fail at its first stage (exit 1)
        if task.data.format != "hub" and not local_path(task.data, Path(base) if base else None).exists():
            raise HarnessError("data.source", task.data.source, f"no such file or directory (task {task.name}, relative "
                               f"to {base or Path.cwd()}); give a path to the data", where=f"{spec.name}")
    names = [task.name for task, _ in tasks]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:  # units are named and paired by task name: two tasks of one name would share them
        raise HarnessError("tasks", twice, "two tasks of this name; give each task of a sweep its own name")
    modality = {task.name: MODELS.get(task.model).modality for task, _ in tasks} if spec.match_modality else {}
    pinned = [(c, *pin_revision(c)) for c in unique]
    pairs = [
        (ci, ti) for ci, (c, _, _) in enumerate(pinned) for ti, (t, _) in enumerate(tasks)
        if not spec.match_modality or modality[t.name] == c.modality
    ]
    plan = SweepPlan(spec, pinned, tasks, pairs, hub_api)
    if not pairs:
        mods = ", ".join(f"{t}: {m}" for t, m in modality.items())
        raise HarnessError(
            "grid", spec.name, f"no units: no card matches a task's modality ({mods}); add cards or tasks"
        )
    trains = {ti for ci, ti in pairs if not pinned[ci][0].is_classifier}  # tasks some card trains a head for
    for overrides in G.combos(spec.grid):  # every value must make a valid task and attack
        for ti, (task, _) in enumerate(tasks):
            t = G.apply(task, overrides, spec.name)
            make_attack(t.attack.name, t.attack.params)
            if ti in trains:
                check_trained_head(t, G.located(task, overrides, spec.name))
    return plan

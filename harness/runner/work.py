"""The unit's stages as the Ray runner places them: the same functions `run` calls (pipeline/unit.py),
wrapped for an actor (prepare keeps its backbone) and for tasks (train, shard, finish). None touches
the results store (the driver writes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.attacks.base import AttackResult
from harness.backbones.load import load_backbone
from harness.backbones.resolve import resolve_model
from harness.errors import HarnessError
from harness.pipeline import unit as U
from harness.pipeline.plan import Unit
from harness.pipeline.unit import Prepared, Trained
from harness.sweep.shards import ShardJob, shard_params


@dataclass
class Stages:
    """What the runner calls; benchmarks may swap in fakes, the runner does not care."""

    prepare: Any = None  # (actor_state, unit, base_dir, cache_dir) -> Prepared
    train: Any = None  # (unit, Prepared, kinds) -> Trained
    shard: Any = None  # (unit, Prepared, Trained, kind, ShardJob) -> AttackResult
    finish: Any = None  # (unit, Prepared, Trained, head_paths, {kind: AttackResult}) -> {table: rows}


def prepare(state: dict, unit: Unit, base_dir: str | None, cache_dir: str | None) -> Prepared:
    """Inside the backbone actor: the model is loaded once per actor and kept in `state`."""
    card = unit.card
    if unit.revision != "none" and not unit.revision.startswith("local") and card.revision != unit.revision:
        card = card.model_copy(update={"revision": unit.revision})
    key = (card.id, unit.revision)
    if key not in state:
        resolved = resolve_model(card)
        if resolved.revision != unit.revision:
            raise HarnessError("revision", resolved.revision, f"{card.id} resolved to another commit than planned ({unit.revision})")
        state.clear()  # one backbone per actor
        state[key] = load_backbone(resolved)
    return U.prepare(state[key], unit, base_dir, cache_dir).light()


def train(unit: Unit, prep: Prepared, kinds: tuple[str, ...]) -> Trained:
    return U.train(unit, prep, kinds)


def shard(unit: Unit, prep: Prepared, trained: Trained, kind: str, job: ShardJob) -> AttackResult:
    return U.attack(unit, prep, trained, kind, shard_params(unit.task.attack.params, job))


def finish(unit: Unit, prep: Prepared, trained: Trained, head_paths: dict, results: dict) -> dict[str, list[dict]]:
    """Score and select (inversion needs the backbone: `run` does it), then the unit's rows."""
    outcomes, evidence = U.finish(unit, prep, trained, results)
    return U.tables(unit, prep, outcomes, evidence, head_paths)


REAL = Stages(prepare=prepare, train=train, shard=shard, finish=finish)

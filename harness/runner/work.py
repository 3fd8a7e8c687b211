"""The real work of a unit, as plain functions the Ray runner places: prepare, train, shard, finish.

Each calls the pipeline's stage functions; none touches the results store (the driver writes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from harness.attacks.base import AttackResult
from harness.backbones.load import load_backbone
from harness.backbones.resolve import resolve_model
from harness.data.split import MemberSplit, load_split
from harness.errors import HarnessError
from harness.pipeline.evidence import select_stage, selection_rows, selection_score_rows
from harness.pipeline.plan import Unit
from harness.pipeline.rows import (
    VictimOutcome,
    candidate_rows,
    match_rows,
    provenance,
    run_rows,
    victim_row,
)
from harness.pipeline.run_task import task_evidence
from harness.pipeline.stages import (
    Embedded,
    TrainedVictim,
    attack_stage,
    embed_stage,
    image_shape,
    pixel_score_stage,
    score_stage,
    train_stage,
)
from harness.specs.task import AttackRecipe
from harness.sweep.shards import ShardJob, shard_params


@dataclass
class Prepared:
    split: MemberSplit  # without the raw inputs (rows, labels, classes only)
    emb: Embedded
    source: str  # where the weights came from
    revision: str
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) of the members, `identity` backbone only


@dataclass
class Trained:
    victims: dict[str, TrainedVictim]
    train_s: dict[str, float]
    mean: torch.Tensor | None  # the member mean, saved with each head


@dataclass
class Stages:
    """What the runner calls; benchmarks may swap in fakes, the runner does not care."""

    prepare: Any = None  # (actor_state, unit, base_dir, cache_dir) -> Prepared
    train: Any = None  # (unit, Prepared, kinds) -> Trained
    shard: Any = None  # (unit, Prepared, Trained, kind, ShardJob) -> AttackResult
    finish: Any = None  # (unit, Prepared, Trained, head_paths, {kind: AttackResult}) -> {table: rows}
    extra: dict = field(default_factory=dict)


def prepare(state: dict, unit: Unit, base_dir: str | None, cache_dir: str | None) -> Prepared:
    """Inside the backbone actor: the model is loaded once per actor and kept in `state`."""
    card = unit.card
    if unit.revision not in ("none", "local") and card.revision != unit.revision:
        card = card.model_copy(update={"revision": unit.revision})
    key = (card.id, unit.revision)
    if key not in state:
        resolved = resolve_model(card)
        if resolved.revision != unit.revision:
            raise HarnessError("revision", resolved.revision, f"{card.id} resolved to another commit than planned ({unit.revision})")
        state.clear()  # one backbone per actor
        state[key] = load_backbone(resolved)
    backbone = state[key]
    split = load_split(unit.task, base_dir)
    task = unit.task
    normalize = card.normalize if task.head.l2_normalize is None else task.head.l2_normalize
    emb = embed_stage(backbone, split, normalize, cache_dir, progress=False)
    light = replace(split, member_inputs=[], nonmember_inputs=[])
    shape = image_shape(split) if card.is_identity else None
    return Prepared(light, emb, backbone.resolved.source, backbone.resolved.revision, shape)


def train(unit: Unit, prep: Prepared, kinds: tuple[str, ...]) -> Trained:
    victims, times = {}, {}
    for kind in kinds:
        t0 = time.perf_counter()
        victims[kind] = train_stage(
            prep.emb, prep.split, unit.task.head, unit.task.seed, kind, progress=False, null_mode=unit.task.null_victim
        )
        times[kind] = time.perf_counter() - t0
    return Trained(victims, times, prep.emb.mean)


def shard(unit: Unit, prep: Prepared, trained: Trained, kind: str, job: ShardJob) -> AttackResult:
    task = unit.task
    recipe = AttackRecipe(name=task.attack.name, params=shard_params(task.attack.params, job))
    return attack_stage(
        trained.victims[kind], prep.emb, task.head, recipe, len(prep.split.class_names), unit.card.is_identity, False
    )


def finish(unit: Unit, prep: Prepared, trained: Trained, head_paths: dict, results: dict) -> dict[str, list[dict]]:
    """Score the merged shards of each victim, select without ground truth (inversion runs with `run`, on the
    backbone), and build the unit's rows (victims last: the done marker)."""
    base = provenance(unit, prep.source)
    recipe = task_evidence(unit.task)
    names = ["candidates", "attack_runs", "matches", "selections", "selection_scores", "victims"]
    tables: dict[str, list[dict]] = {name: [] for name in names}
    for kind, result in results.items():
        t0 = time.perf_counter()
        scores = score_stage(result, prep.emb, unit.task.fpr)
        pixels = pixel_score_stage(result, prep.emb, unit.task.fpr, prep.image_shape) if prep.image_shape else None
        vo = VictimOutcome(
            trained.victims[kind], result, scores, trained.train_s.get(kind, 0.0), result.wall_s, time.perf_counter() - t0,
            pixels=pixels,
        )
        vo.head_path = head_paths.get(kind, "")
        tables["candidates"] += candidate_rows(base, vo)
        tables["attack_runs"] += run_rows(base, vo)
        tables["matches"] += match_rows(base, prep.split, vo)
        if recipe.enabled and len(result.candidates):
            ev = select_stage(result, prep.emb, scores, recipe)
            tables["selections"] += selection_rows(base, kind, ev, recipe)
            tables["selection_scores"] += selection_score_rows(base, kind, ev)
        tables["victims"].append(victim_row(base, unit, prep.split, prep.emb, vo, prep.emb.cache_hit))
    return tables


REAL = Stages(prepare=prepare, train=train, shard=shard, finish=finish)

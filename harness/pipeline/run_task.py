"""Run one unit end to end: embed -> train victim (and null victim) -> attack -> score -> rows."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from harness.attacks import make_attack
from harness.backbones.load import load_backbone
from harness.backbones.resolve import ResolvedModel, resolve_model
from harness.data.split import MemberSplit, load_split
from harness.heads.io import load_head, save_head
from harness.invert.recipe import EvidenceRecipe
from harness.pipeline.evidence import VictimEvidence, evidence_stage, inversion_rows, selection_rows, selection_score_rows
from harness.pipeline.plan import Unit
from harness.pipeline.rows import VictimOutcome, candidate_rows, match_rows, provenance, run_rows, victim_row
from harness.pipeline.stages import (
    Embedded,
    attack_stage,
    embed_stage,
    given_head_stage,
    image_shape,
    pixel_score_stage,
    score_stage,
    train_stage,
)
from harness.specs.model_card import ModelCard
from harness.specs.task import TaskSpec
from harness.store.store import ResultStore


@dataclass
class UnitOutput:
    unit: Unit
    resolved: ResolvedModel
    split: MemberSplit
    emb: Embedded
    outcomes: dict[str, VictimOutcome]
    row_counts: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    evidence: dict[str, VictimEvidence] = field(default_factory=dict)  # victim kind -> selection + inversions
    recipe: EvidenceRecipe = field(default_factory=EvidenceRecipe)


def task_evidence(task: TaskSpec) -> EvidenceRecipe:
    """The task's evidence recipe (a task field once specs carry one), else the defaults."""
    found = getattr(task, "evidence", None)
    if isinstance(found, EvidenceRecipe):
        return found
    return EvidenceRecipe.model_validate(found.model_dump() if hasattr(found, "model_dump") else (found or {}))


def plan_unit(task: TaskSpec, card: ModelCard, head_file: str | None = None) -> tuple[Unit, ResolvedModel]:
    """Check the attack's parameters and resolve the card's revision to a commit before any work."""
    make_attack(task.attack.name, task.attack.params)
    resolved = resolve_model(card)
    return Unit(task, card, resolved.revision, head_file), resolved


def _stage(console: Console, label: str):
    console.print(f"[bold cyan]>[/] {label}")
    return time.perf_counter()


def run_unit(
    unit: Unit,
    resolved: ResolvedModel,
    out: Path | None,
    cache_dir: Path | None = None,
    base_dir: Path | None = None,
    progress: bool = True,
    console: Console | None = None,
    evidence: EvidenceRecipe | None = None,
) -> UnitOutput:
    """All stages in order; rows are written only once every stage has succeeded."""
    console = console or Console(stderr=True, quiet=not progress, width=None if sys.stderr.isatty() else 160)
    task, card = unit.task, unit.card
    t_all = time.perf_counter()
    if out is not None:
        ResultStore.check(out)
    given = load_head(unit.head_file) if unit.head_file else None

    _stage(console, f"data: {task.data.source} ({task.per_class}/class x {len(task.classes)}, {task.nonmembers} non-members)")
    split = load_split(task, base_dir)
    _stage(console, f"embed: {card.id}@{resolved.revision[:12]} ({resolved.source})")
    backbone = load_backbone(resolved)
    normalize = card.normalize if task.head.l2_normalize is None else task.head.l2_normalize
    emb = embed_stage(backbone, split, normalize, cache_dir, progress)
    console.print(f"  {emb.members.shape[0] + emb.nonmembers.shape[0]} x {emb.dim}-d, cache {'hit' if emb.cache_hit else 'miss'}, {emb.wall_s:.1f}s")

    kinds = ["real"] + (["null"] if task.null_victim and given is None else [])
    outcomes: dict[str, VictimOutcome] = {}
    for kind in kinds:
        t0 = _stage(console, f"victim ({kind}): head {[emb.dim, *task.head.widths]} loss={task.head.loss} wd={task.head.weight_decay}")
        if given is not None:
            trained = given_head_stage(given[0], task.head.loss, emb, split, unit.head_file)
        else:
            trained = train_stage(emb, split, task.head, task.seed, kind, progress, null_mode=task.null_victim)
        train_s = time.perf_counter() - t0
        rep = trained.report
        if rep:
            console.print(
                f"  loss {rep.final_loss:.2e}, grad {rep.grad_norm:.1e}, {rep.steps} steps ({rep.stopped_by}), "
                f"train acc {rep.train_acc:.2f}, test acc {trained.test_acc:.2f}, oracle residual {trained.oracle_residual:.3f}"
            )
        t0 = _stage(console, f"attack ({kind}): {task.attack.name}")
        result = attack_stage(trained, emb, task.head, task.attack, len(split.class_names), card.is_identity, progress)
        attack_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = score_stage(result, emb, task.fpr)
        pixels = pixel_score_stage(result, emb, task.fpr, image_shape(split)) if card.is_identity else None
        outcomes[kind] = VictimOutcome(trained, result, scores, train_s, attack_s, time.perf_counter() - t0, pixels=pixels)
        console.print(
            f"  {len(result.runs)} runs, {len(result.candidates)} candidates in {attack_s:.1f}s; "
            f"TPR@{task.fpr:.0%}FPR {scores.tpr:.2f} (threshold {scores.threshold:.3f})"
            + (f"; {pixels.good}/{split.n} members at SSIM > 0.4" if pixels else "")
        )

    output = UnitOutput(unit, resolved, split, emb, outcomes)
    output.recipe = recipe = evidence or task_evidence(task)
    if recipe.enabled:
        for kind, vo in outcomes.items():
            t0 = _stage(console, f"select + invert ({kind})")
            ev = evidence_stage(backbone, split, emb, vo.result, vo.scores, recipe, kind == "real", cache_dir, base_dir, progress)
            output.evidence[kind] = ev
            if ev.cluster is not None:
                console.print(
                    f"  {len(ev.selection)} clusters in {ev.select_s:.1f}s; top-20 precision {ev.cluster.precision[20]:.2f} "
                    f"(lowest-loss baseline {ev.baseline.precision[20]:.2f}); {len(ev.inversions)} inversions in {ev.invert_s:.1f}s"
                )
    if out is not None:
        output.row_counts = write_unit(out, output)
    output.wall_s = time.perf_counter() - t_all
    return output


def write_unit(out: Path, o: UnitOutput) -> dict[str, int]:
    """Heads and rows of one unit; the victims table is written last and marks the unit done."""
    store = ResultStore(out)
    uid = o.unit.unit_id
    base = provenance(o.unit, o.resolved.source)
    tables: dict[str, list[dict]] = {"candidates": [], "attack_runs": [], "matches": [], "victims": []}
    if o.evidence:  # evidence tables go before the victims table, which marks the unit done
        tables = {"candidates": [], "attack_runs": [], "matches": [], "selections": [], "selection_scores": [], "inversions": [], "victims": []}
    for kind, vo in o.outcomes.items():
        path = out / "heads" / f"{uid}-{kind}.safetensors"
        save_head(vo.trained.head, path, {"unit_id": uid, "victim": kind, "loss": o.unit.task.head.loss}, mean=o.emb.mean)
        vo.head_path = str(path.relative_to(out))
        tables["candidates"] += candidate_rows(base, vo)
        tables["attack_runs"] += run_rows(base, vo)
        tables["matches"] += match_rows(base, o.split, vo)
        ev = o.evidence.get(kind)
        if ev is not None:
            tables["selections"] += selection_rows(base, kind, ev, o.recipe)
            tables["selection_scores"] += selection_score_rows(base, kind, ev)
            tables["inversions"] += inversion_rows(base, kind, ev)
        tables["victims"].append(victim_row(base, o.unit, o.split, o.emb, vo, o.emb.cache_hit))
    for name, rows in tables.items():
        store.write(name, uid, rows)
    return {k: len(v) for k, v in tables.items()}

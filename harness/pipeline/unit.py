"""One unit of work, stage by stage; the only place the order of the stages is written.

    prepare (data, embed) -> train (victim and null victim) -> attack (per victim; shards on Ray)
      -> finish (score, select) -> [invert: `run` only, on the backbone] -> tables -> write

`recon-harness run` calls `run_unit` (every stage in process). The Ray runner (harness/runner)
calls the same stage functions as tasks and actors: it decides where each stage runs, never what
it does.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape

from harness.attacks.base import AttackResult
from harness.backbones.load import Backbone, load_backbone
from harness.backbones.resolve import ResolvedModel
from harness.errors import HarnessError
from harness.data.split import MemberSplit, load_split
from harness.invert.recipe import EvidenceRecipe
from harness.pipeline.evidence import VictimEvidence, invert_stage, inversion_rows, select_stage, selection_rows, selection_score_rows
from harness.pipeline.plan import Unit
from harness.pipeline.polish import polish_line, polish_stage
from harness.pipeline.rows import VictimOutcome, candidate_rows, match_rows, provenance, run_rows, victim_row
from harness.pipeline.stages import (
    Embedded, GivenHead, attack_stage, checkpoint_stage, embed_stage, given_head_stage, image_shape, pixel_score_stage,
    score_stage, train_stage,
)
from harness.pipeline.write import TABLES, head_path, save_heads, unmark_done, write_unit
from harness.scoring.verdict import GOOD_COSINE, percent
from harness.specs.model_card import ModelCard
from harness.specs.task import AttackRecipe, TaskSpec
from harness.store.store import ResultStore
from harness.victims.build import TrainedVictim
from harness.victims.frame import Frame
from harness.victims.transforms import TRANSFORMS

@dataclass
class Prepared:
    split: MemberSplit  # without the raw inputs once `light()` (rows, labels, classes only)
    emb: Embedded
    source: str  # where the weights came from
    revision: str
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) of the members, `identity` backbone only
    given: GivenHead | None = None  # a classifier card: the checkpoint's head, taken as it is
    checkpoint: dict = field(default_factory=dict)  # a classifier card: architecture, labels, what is attacked, logits check

    def light(self) -> "Prepared":
        return replace(self, split=replace(self.split, member_inputs=[], nonmember_inputs=[], null_inputs=[]))


@dataclass
class Trained:
    victims: dict[str, TrainedVictim]
    train_s: dict[str, float] = field(default_factory=dict)


@dataclass
class UnitOutput:
    unit: Unit
    resolved: ResolvedModel
    split: MemberSplit
    emb: Embedded
    outcomes: dict[str, VictimOutcome]
    evidence: dict[str, VictimEvidence] = field(default_factory=dict)  # victim kind -> selection + inversions
    recipe: EvidenceRecipe = field(default_factory=EvidenceRecipe)
    row_counts: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    pending: tuple | None = None  # (rows, trained) computed for `out` and not yet written (run_unit(write=False))


def victim_kinds(task: TaskSpec, given_head: bool) -> tuple[str, ...]:
    return ("real",) + (("null",) if task.null_victim and not given_head else ())


def normalizes(task: TaskSpec, card: ModelCard) -> bool:
    """L2-normalise embeddings: the task's choice, else the card's; a transform may require it (`l2`)."""
    chosen = card.normalize if task.head.l2_normalize is None else task.head.l2_normalize
    return bool(chosen or TRANSFORMS[task.victim.transform].requires_l2)


# ---- the stages ----------------------------------------------------------------------------------
def prepare(backbone: Backbone, unit: Unit, base_dir, cache_dir, progress: bool = False) -> Prepared:
    split = load_split(unit.task, base_dir)
    ckpt = backbone.classifier
    checkpoint = checkpoint_stage(backbone, unit.task, split) if ckpt else {}  # before embedding anything
    emb = embed_stage(backbone, split, normalizes(unit.task, unit.card), cache_dir, progress)
    if unit.card.dim and not unit.card.is_identity and unit.card.dim != emb.dim:  # as validate and --head took it
        raise HarnessError("dim", unit.card.dim, f"{unit.card.id} embeds to {emb.dim}-d; set dim: {emb.dim} in the card, "
                           "or leave dim out")
    given = GivenHead(ckpt.head, Frame(torch.zeros(emb.dim))) if ckpt else None  # its features as they are: no centring
    shape = image_shape(split) if unit.card.is_identity else None
    return Prepared(split, emb, backbone.resolved.source, backbone.resolved.revision, shape, given, checkpoint)


def train(unit: Unit, prep: Prepared, kinds: tuple[str, ...], given: GivenHead | None = None,
          progress: bool = False) -> Trained:
    """Train the victims of `kinds`, or take the head given as a file (`given`) or by a classifier checkpoint."""
    given = given or prep.given
    out = Trained({})
    for kind in kinds:
        t0 = time.perf_counter()
        if given is not None:
            v = given_head_stage(given.head, unit.task.head.loss, prep.emb, prep.split, unit.head_file or unit.card.id,
                                 given.frame, given.stated, "--head" if unit.head_file else "model", unit.task.victim.transform)
            out.victims[kind] = replace(v, info=prep.checkpoint) if prep.checkpoint else v
        else:
            out.victims[kind] = train_stage(prep.emb, prep.split, unit.task.head, unit.task.seed, kind, progress,
                                            unit.task.null_victim, unit.task.victim)
        out.train_s[kind] = time.perf_counter() - t0
    return out


def attack(unit: Unit, prep: Prepared, trained: Trained, kind: str, params: dict | None = None,
           progress: bool = False) -> AttackResult:
    """Attack one victim; `params` overrides the task's attack parameters (a shard's restarts and seed)."""
    task = unit.task
    recipe = task.attack if params is None else AttackRecipe(name=task.attack.name, params=params)
    return attack_stage(trained.victims[kind], prep.emb, task.head, recipe, len(prep.split.class_names),
                        unit.card.is_identity, progress)


def finish(unit: Unit, prep: Prepared, trained: Trained, results: dict[str, AttackResult],
           recipe: EvidenceRecipe | None = None, progress: bool = False) -> tuple[dict[str, VictimOutcome], dict[str, VictimEvidence]]:
    """Polish each victim's candidates (pipeline/polish.py; `results` takes the polished ones), score them (members vs
    non-members, SSIM for pixels) and select without ground truth (by `recipe`, default the task's evidence settings)."""
    outcomes, evidence, floor = {}, {}, None
    recipe = recipe or unit.task.evidence
    for kind, result in results.items():
        result = results[kind] = polish_stage(result, trained.victims[kind], prep.emb, unit.task.head, unit.card.is_identity)
        t0 = time.perf_counter()
        scores = score_stage(result, prep.emb, unit.task.fpr)
        pixels = pixel_score_stage(result, prep.emb, unit.task.fpr, prep.image_shape, progress, floor) if prep.image_shape else None
        floor = pixels.member_public if pixels is not None else floor  # members x public images: one per unit
        outcomes[kind] = VictimOutcome(trained.victims[kind], result, scores, trained.train_s.get(kind, 0.0), result.wall_s,
                                       time.perf_counter() - t0, pixels=pixels)
        if recipe.enabled and len(result.candidates):
            evidence[kind] = select_stage(result, prep.emb, scores, recipe)
    return outcomes, evidence


def tables(unit: Unit, prep: Prepared, outcomes: dict[str, VictimOutcome], evidence: dict[str, VictimEvidence],
           head_paths: dict[str, str], recipe: EvidenceRecipe | None = None) -> dict[str, list[dict]]:
    """The unit's rows, table by table (TABLES order)."""
    base = provenance(unit, prep.source, recipe)
    recipe = recipe or unit.task.evidence
    out: dict[str, list[dict]] = {name: [] for name in TABLES}
    for kind, vo in outcomes.items():
        vo.head_path = head_paths.get(kind, "")
        out["candidates"] += candidate_rows(base, vo)
        out["attack_runs"] += run_rows(base, vo)
        out["matches"] += match_rows(base, prep.split, vo)
        ev = evidence.get(kind)
        if ev is not None:
            out["selections"] += selection_rows(base, kind, ev, recipe)
            out["selection_scores"] += selection_score_rows(base, kind, ev)
            out["inversions"] += inversion_rows(base, kind, ev)
        out["victims"].append(victim_row(base, unit, prep.split, prep.emb, vo, prep.emb.cache_hit))
    return out


# ---- in process: `recon-harness run` --------------------------------------------------------------
def _stage(console: Console, label: str) -> float:
    console.print(f"[bold cyan]>[/] {label}")
    return time.perf_counter()


def run_unit(unit: Unit, resolved: ResolvedModel, out: Path | None, cache_dir: Path | None = None,
             base_dir: Path | None = None, progress: bool = True, console: Console | None = None,
             evidence: EvidenceRecipe | None = None, given: GivenHead | None = None,
             memo: dict | None = None, backbone: Backbone | None = None, write: bool = True) -> UnitOutput:
    """All stages in order, in this process; rows and heads are written only once every stage has succeeded
    (`write=False`: kept in the output for `save_unit`, so that a run of several units writes none of them when
    one fails).
    `evidence` overrides the task's selection / inversion settings (the CLI's --no-evidence, --corpus)
    without changing the unit's id. `memo`, shared by the units of one run, lets a word search be reused
    (targets.invert_text); `backbone`, one already loaded from `resolved`."""
    console = console or Console(stderr=True, quiet=not progress, width=None if sys.stderr.isatty() else 160)
    task, card = unit.task, unit.card
    recipe = evidence or task.evidence
    t_all = time.perf_counter()
    if out is not None:
        ResultStore.check(out)

    _stage(console, f"data: {escape(str(task.data.source))} ({task.per_class}/class x {len(task.classes)}, {task.nonmembers} non-members)")
    backbone = backbone if backbone is not None and backbone.resolved == resolved else load_backbone(resolved)
    console.print(escape(f"  embed: {card.id}@{resolved.revision[:12]} ({resolved.source})"))
    prep = prepare(backbone, unit, base_dir, cache_dir, progress)
    if prep.split.repeats:
        console.print(f"  data: {prep.split.repeats} rows repeat an earlier row's input: left out of the draw (each input "
                      "is a member, a non-member or in the null draw once)")
    emb = prep.emb
    console.print(f"  {emb.members.shape[0] + emb.nonmembers.shape[0]} x {emb.dim}-d, cache {'hit' if emb.cache_hit else 'miss'}, {emb.wall_s:.1f}s")

    if prep.checkpoint:
        ck = prep.checkpoint
        console.print(f"  {ck['architecture']}, labels {escape(str(ck['labels']))}: logits reproduced to {ck['logits_max_abs_diff']:.1e} "
                      f"on {ck['logits_checked_on']} inputs; attacked: {ck['attacked']}")
    trained, results = Trained({}), {}
    for kind in victim_kinds(task, given is not None or prep.given is not None):
        head_of = "the checkpoint's head" if prep.given is not None else task.victim.label
        _stage(console, f"victim ({kind}): {head_of}, loss={task.head.loss}")
        got = train(unit, prep, (kind,), given, progress)
        trained.victims.update(got.victims)
        trained.train_s.update(got.train_s)
        v = got.victims[kind]
        # the head as trained or given (a trainer may bring its own widths: sklearn-mlp 100, linear none)
        stated = v.info.get("stated") if not v.report else None
        console.print(f"  head {v.head.dims} ({v.head.activation if len(v.head.dims) > 2 else 'linear'})"
                      + ("" if v.report else ", given")
                      + (escape(f"; its file states {', '.join(f'{k} {val}' for k, val in stated.items())}") if stated else ""))
        if v.report:
            console.print(
                f"  loss {v.report.final_loss:.2e}, grad {v.report.grad_norm:.1e}, {v.report.steps} steps ({v.report.stopped_by}), "
                f"train acc {v.report.train_acc:.2f}, test acc {v.test_acc:.2f}, oracle residual {v.oracle_residual:.3f}"
                + (f", active units {v.active_share:.2f}" if v.active_share is not None else "")
                + (f", carries {v.effective_members:.0f} of its {len(emb.members)} training rows" if v.effective_members is not None else "")
                + (f", {v.own_pattern} with an activation pattern of their own" if v.own_pattern is not None else "")
            )
        _stage(console, f"attack ({kind}): {'weighted-sum (linear head)' if v.linear else task.attack.name}")
        results[kind] = attack(unit, prep, trained, kind, progress=progress)
    _stage(console, "score" + (" + select" if recipe.enabled else "") + f" ({', '.join(results)})")  # before, not after
    outcomes, ev = finish(unit, prep, trained, results, recipe, progress)
    for kind, vo in outcomes.items():
        s, px = vo.scores, vo.pixels
        console.print(
            f"  {kind}: {len(vo.result.runs)} runs, {len(vo.result.candidates)} candidates in {vo.attack_s:.1f}s; "
            f"TPR@{percent(task.fpr)}FPR {s.tpr:.2f} (threshold {s.threshold:.3f}); {int((s.member_best > GOOD_COSINE).sum())}/{prep.split.n} "
            f"members at cosine > 0.8" + (f"; {px.good}/{prep.split.n} at SSIM > 0.4" if px else "")
            + (f" ({px.beyond_public if px else s.beyond_public(GOOD_COSINE)} closer than any public input; the public inputs alone "
               f"match {px.public_good if px else s.public_good(GOOD_COSINE)})" if len(s.member_public) else "")
        )
        if vo.result.polish:
            console.print(polish_line(vo.result.polish))
    for kind, e in ev.items():
        t0 = _stage(console, f"invert ({kind})")
        if kind == "real":
            invert_stage(e, backbone, prep.split, emb, results[kind], recipe, cache_dir, base_dir, progress, memo)
        if e.cluster is not None:
            console.print(
                f"  {len(e.selection)} clusters in {e.select_s:.1f}s; top-20 precision {e.cluster.precision[20]:.2f} "
                f"(lowest-loss baseline {e.baseline.precision[20]:.2f}); {len(e.inversions)} inversions in {time.perf_counter() - t0:.1f}s"
            )
    output = UnitOutput(unit, resolved, prep.split, emb, outcomes, ev, recipe)
    if out is not None:
        paths = {kind: str(head_path(out, unit.unit_id, kind).relative_to(out)) for kind in trained.victims}
        rows = tables(unit, prep, outcomes, ev, paths, recipe)
        output.row_counts = {k: len(v) for k, v in rows.items()}
        output.pending = (rows, trained)
        if write:
            save_unit(out, output)
    output.wall_s = time.perf_counter() - t_all
    return output


def save_unit(out: Path, output: UnitOutput) -> None:
    """Write what `run_unit` computed for `out`: the heads, then the rows."""
    rows, trained = output.pending
    store = ResultStore(out)  # the marker first: heads then rows go into a results directory
    unmark_done(store, output.unit.unit_id)  # a finished unit rewritten: not done until its new rows are all in
    save_heads(out, output.unit, trained)
    output.row_counts = write_unit(store, output.unit.unit_id, rows)
    output.pending = None


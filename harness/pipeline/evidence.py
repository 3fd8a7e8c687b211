"""From candidates to evidence: select (no ground truth), invert (image / text), score vs. members.

Stage functions of plain typed inputs, like stages.py. The harness scores selections and
inversions against the members afterwards; nothing here that ranks or inverts looks at them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.attacks.base import AttackResult
from harness.backbones.load import Backbone
from harness.data.split import MemberSplit
from harness.invert.recipe import EvidenceRecipe
from harness.invert.space import EmbedSpace
from harness.invert.targets import invert_image, invert_text, inversion_targets
from harness.pipeline.stages import Embedded, finite_candidates
from harness.scoring.embedding import MatchScores
from harness.select import Selection, TopK, lowest_loss_order, score_selection, select_candidates
from harness.select.score import KS


@dataclass
class VictimEvidence:
    selection: Selection | None  # None when the attack left no usable candidate
    cluster: TopK | None
    baseline: TopK | None
    threshold: float
    select_s: float
    inversions: list[dict] = field(default_factory=list)  # rows without provenance
    invert_s: float = 0.0


def select_stage(result: AttackResult, emb: Embedded, scores: MatchScores, recipe: EvidenceRecipe) -> VictimEvidence:
    """Cluster and rank the candidates; score the ranking and the lowest-loss baseline at the victim's threshold."""
    t0 = time.perf_counter()
    finite = finite_candidates(result).numpy()
    if not finite.any():
        return VictimEvidence(None, None, None, scores.threshold, time.perf_counter() - t0)
    losses = {r.run_id: r.final_loss for r in result.runs}
    sel = select_candidates(
        result.candidates, result.run_ids, losses, result.lambdas, method=recipe.select_method, min_cosine=recipe.min_cosine,
        loss_factor=recipe.select_loss_factor, suppress_cosine=recipe.select_suppress, weigh_lambda=recipe.select_weigh_lambda,
    )
    s = time.perf_counter() - t0
    members = emb.members
    cluster = score_selection(result.candidates[sel.rep_index], members, scores.threshold, KS)
    order = lowest_loss_order(result.run_ids, losses, result.lambdas, finite)
    baseline = score_selection(result.candidates[order], members, scores.threshold, KS)
    return VictimEvidence(sel, cluster, baseline, scores.threshold, s)


def invert_stage(
    ev: VictimEvidence, backbone: Backbone, split: MemberSplit, emb: Embedded, result: AttackResult,
    recipe: EvidenceRecipe, cache_dir: Path | None = None, base_dir: Path | None = None, progress: bool = False,
    memo: dict | None = None,
) -> VictimEvidence:
    """Invert the top selections and the first true members (the upper bound) on the backbone; `memo`: word
    searches already run by other units of the same run (targets.invert_text)."""
    t0 = time.perf_counter()
    space = EmbedSpace(backbone, emb.normalized, emb.mean, cache_dir)
    chosen = ev.selection.rep_index.tolist() if ev.selection is not None else []
    targets = inversion_targets(chosen, result.candidates, emb.members, recipe)
    if backbone.card.modality == "text":
        ev.inversions = invert_text(space, split, emb, targets, recipe, base_dir, progress, memo)
    else:
        ev.inversions = invert_image(space, split, emb, targets, recipe, progress)
    ev.invert_s = time.perf_counter() - t0
    return ev


def selection_rows(base: dict, kind: str, ev: VictimEvidence, recipe: EvidenceRecipe) -> list[dict]:
    sel, top = ev.selection, ev.cluster
    if sel is None:
        return []
    return [
        {
            **base, "victim": kind, "rank": r, "candidate": int(sel.rep_index[r]), "size": int(sel.size[r]),
            "support": int(sel.support[r]), "tightness": float(sel.tightness[r]), "confidence": float(sel.confidence[r]),
            "method": sel.method, "min_cosine": sel.min_cosine, "loss_factor": sel.params["loss_factor"],
            "suppress_cosine": sel.params["suppress_cosine"], "weigh_lambda": sel.params["weigh_lambda"],
            "duplicate_of": int(sel.duplicate_of[r]),
            "matched_member": int(top.member[r]),
            "member_score": float(top.score[r]), "hit": bool(top.hits[r]),
        }
        for r in range(len(sel))
    ]


def selection_score_rows(base: dict, kind: str, ev: VictimEvidence) -> list[dict]:
    rows = []
    for strategy, top in (("cluster", ev.cluster), ("lowest-loss", ev.baseline)):
        if top is None:
            continue
        for k in top.ks:
            rows.append({
                **base, "victim": kind, "strategy": strategy, "k": k, "precision": top.precision[k],
                "recall": top.recall[k], "threshold": ev.threshold if np.isfinite(ev.threshold) else None,
                "n_selected": len(top.hits), "select_s": ev.select_s,
            })
    return rows


def inversion_rows(base: dict, kind: str, ev: VictimEvidence) -> list[dict]:
    return [{**base, "victim": kind, **r} for r in ev.inversions]

"""Turn one unit's stage outputs into rows of the result tables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harness.attacks.base import AttackResult, lambda_size
from harness.data.split import MemberSplit
from harness.pipeline.plan import Unit
from harness.pipeline.stages import Embedded, public_norm, start_pool
from harness.victims.build import TrainedVictim
from harness.provenance import device_name, now_utc, versions_json
from harness.scoring.embedding import MatchScores
from harness.scoring.verdict import GOOD_COSINE

if TYPE_CHECKING:
    from harness.scoring.pixels import PixelScores


@dataclass
class VictimOutcome:
    trained: TrainedVictim
    result: AttackResult
    scores: MatchScores
    train_s: float
    attack_s: float
    score_s: float
    head_path: str = ""
    pixels: PixelScores | None = None  # SSIM scores, `identity` backbone only


def provenance(unit: Unit, source: str, evidence=None) -> dict:
    """The columns every row carries. `evidence`: the selection / inversion settings the unit ran with where the
    run overrode the task's (`run --no-evidence`, `--corpus`): the settings say what was run (the id stays the task's)."""
    settings = unit.settings()
    if evidence is not None:
        settings["task"]["evidence"] = evidence.model_dump(mode="json")
    return {
        "unit_id": unit.unit_id,
        "task": unit.task.name,
        "model": unit.card.name,
        "model_id": unit.card.id,
        "revision": unit.revision,
        "weights_source": source,
        "seed": unit.task.seed,
        "settings": json.dumps(settings, sort_keys=True, default=str),
        "versions": versions_json(),
        "created_at": now_utc(),
    }


def _f(x) -> float | None:
    """Finite floats as they are; NaN/inf (nothing measured) as null."""
    x = float(x)
    return x if np.isfinite(x) else None


def _opt(x) -> float | None:
    """_f, with None (not defined for this victim) kept as null."""
    return None if x is None else _f(x)


def victim_row(base: dict, unit: Unit, split: MemberSplit, emb: Embedded, o: VictimOutcome, cache_hit: bool) -> dict:
    s, rep, head = o.scores, o.trained.report, o.trained.head
    count = lambda x: x if s.measured else None  # noqa: E731 - nothing measured (every run diverged) is null, not 0 members
    return {
        **base,
        "victim": o.trained.kind,
        "model_kind": unit.card.kind,
        "n_members": split.n,
        "n_nonmembers": len(split.nonmember_rows),
        "num_classes": len(split.class_names),
        "embed_dim": emb.dim,
        "head_dims": head.dims,
        "head_activation": head.activation if len(head.dims) > 2 else None,  # a linear head has no hidden layer
        "head_bias": head.bias_mode,
        "head_params": sum(p.numel() for p in head.parameters()),
        "l2_normalized": emb.normalized,
        "train_loss": rep.final_loss if rep else None,
        "grad_norm": rep.grad_norm if rep else None,
        "train_steps": rep.steps if rep else None,
        "stopped_by": rep.stopped_by if rep else "given",
        "train_acc": rep.train_acc if rep else _opt(o.trained.train_acc),
        "test_acc": _f(o.trained.test_acc),
        "oracle_residual": _f(o.trained.oracle_residual),
        "stationarity_bound": _opt(o.trained.stationarity_bound),
        "effective_members": _opt(o.trained.effective_members),
        "in_row_space": o.trained.in_row_space,
        "own_pattern": o.trained.own_pattern,
        "recipe": o.trained.recipe.label,
        "transform": o.trained.recipe.transform,
        "trainer": o.trained.recipe.trainer,
        "trainer_params": json.dumps(o.trained.recipe.params, sort_keys=True, default=str),
        "trainer_info": json.dumps(o.trained.info, sort_keys=True, default=float),
        "dp_epsilon": _f(o.trained.info["epsilon"]) if "epsilon" in o.trained.info else None,
        "active_share": _opt(o.trained.active_share),
        "typical_norm": _f(public_norm(o.trained.frame, emb)),
        "attack": unit.task.attack.name if not o.trained.linear else "weighted-sum",
        "n_runs": len(o.result.runs),
        "attack_shards": [{"restarts": r, "seed": sd} for r, sd in o.result.layout()],
        "n_candidates": len(o.result.candidates),
        "score_space": "cosine, centred embeddings",
        "threshold": _f(s.threshold),
        "fpr": s.fpr,
        "n_control": len(s.nonmember_best),
        "tpr_at_fpr": _f(s.tpr),
        "members_passed": count(int(s.passed().sum())),
        "mean_member_best": _f(np.mean(s.member_best)),
        "mean_nonmember_best": _f(np.mean(s.nonmember_best)) if len(s.nonmember_best) else None,
        "good_at_0_8": count(int((s.member_best > 0.8).sum())),
        "good_at_0_9": count(int((s.member_best > 0.9).sum())),
        "public_good_at_0_8": s.public_good(GOOD_COSINE),
        "good_at_0_8_beyond_public": count(s.beyond_public(GOOD_COSINE)),
        "good_ssim": o.pixels.good if o.pixels else None,
        "public_good_ssim": o.pixels.public_good if o.pixels else None,
        "good_ssim_beyond_public": o.pixels.beyond_public if o.pixels else None,
        "good_at_0_8_first_half": count(s.good_first_half),
        "good_ssim_first_half": o.pixels.good_first_half if o.pixels else None,
        **polish_columns(o.result.polish),
        "ssim_threshold": _f(o.pixels.threshold) if o.pixels else None,
        "ssim_tpr_at_fpr": _f(o.pixels.tpr) if o.pixels else None,
        "mean_member_best_ssim": _f(np.mean(o.pixels.member_best)) if o.pixels else None,
        "head_path": o.head_path,
        "embed_s": emb.wall_s,
        "train_s": o.train_s,
        "attack_s": o.attack_s,
        "score_s": o.score_s,
        "device": o.result.device or device_name(),  # where the attack ran
        "train_device": (o.trained.report.device or None) if o.trained.report else None,  # and the head trained
        "embed_cache_hit": cache_hit,
    }


def run_rows(base: dict, o: VictimOutcome) -> list[dict]:
    return [
        {
            **base,
            "victim": o.trained.kind,
            "run_id": r.run_id,
            "status": r.status,
            "iterations": r.iterations,
            "final_loss": _f(r.final_loss),
            "wall_s": r.wall_s,
            "run_settings": json.dumps(r.settings, sort_keys=True, default=str),
            "loss_curve": [float(v) for v in r.loss_curve],
            "stopped_by": r.stopped_by,
        }
        for r in o.result.runs
    ]


def candidate_rows(base: dict, o: VictimOutcome) -> list[dict]:
    res, s = o.result, o.scores
    if len(res.candidates) == 0:
        return []
    full = res.lambdas.reshape(len(res.candidates), -1).double().numpy()
    lam = lambda_size(full, len(full))
    vecs = res.candidates.float().numpy()
    return [
        {
            **base,
            "victim": o.trained.kind,
            "candidate": i,
            "run_id": int(res.run_ids[i]),
            "label": int(res.labels[i]),
            "lambda_": _f(lam[i]),
            "best_member": int(s.candidate_member[i]) if s.candidate_member[i] >= 0 else None,
            "best_member_score": _f(s.candidate_best[i]),
            "vector": vecs[i],  # a view: Arrow copies it whole (a list of 3,072 Python floats took 95 KB a row)
            "lambdas": [_f(v) for v in full[i]] if full.shape[1] > 1 else None,
        }
        for i in range(len(vecs))
    ]


def _ssim(p, i: int, member: bool) -> dict:
    """A match row's SSIM columns: pixel victims only (null otherwise, or when no candidate was finite)."""
    if p is None:
        return {"ssim": None, "ssim_candidate": None, "ssim_passed": None}
    best = p.member_best[i] if member else p.nonmember_best[i]
    return {"ssim": _f(best), "ssim_candidate": int(p.member_best_idx[i]) if member else None,
            "ssim_passed": bool(best > p.threshold)}


def match_rows(base: dict, split: MemberSplit, o: VictimOutcome) -> list[dict]:
    s = o.scores
    rows = []
    for i in range(split.n):
        rows.append({
            **base, "victim": o.trained.kind, "kind": "member", "index": i,
            "source_row": int(split.member_rows[i]), "label": int(split.member_labels[i]),  # not the null's training labels
            "best_candidate": int(s.member_best_idx[i]) if s.member_best_idx[i] >= 0 else None,
            "score": _f(s.member_best[i]),
            "passed": bool(s.member_best[i] > s.threshold),
            **_ssim(o.pixels, i, member=True),
        })
    _, control = start_pool(o.result.params, len(split.nonmember_rows))  # the non-members the scores were judged on
    for i, j in enumerate(control.tolist()):
        rows.append({
            **base, "victim": o.trained.kind, "kind": "nonmember", "index": j,
            "source_row": int(split.nonmember_rows[j]), "label": int(split.nonmember_labels[j]),
            "best_candidate": None, "score": _f(s.nonmember_best[i]),
            "passed": bool(s.nonmember_best[i] > s.threshold),
            **_ssim(o.pixels, i, member=False),
        })
    return rows


def polish_columns(record: dict | None) -> dict:
    """The victims row's polish columns from AttackResult.polish (null where the polish did not run)."""
    r = record or {}
    return {"polish_steps": r.get("steps"), "polish_residual_before": _f(r["residual_before"]) if r else None,
            "polish_residual_after": _f(r["residual_after"]) if r else None, "polish_s": r.get("seconds")}

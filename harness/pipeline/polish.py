"""The polish stage: after the search (and after a sweep's shards are merged), every candidate of the victim's
attack moved together by exact least squares on the head's first layer (attacks/polish.py), its steps judged by the
residual the search minimised (the attack's `layer_weights`)."""

from __future__ import annotations

from dataclasses import replace

import torch

from harness.attacks.base import AttackResult
from harness.attacks.objective import search_layer_weights
from harness.attacks.polish import polish, polishable
from harness.attacks.recombine import candidate_weight
from harness.pipeline.stages import Embedded, finite_candidates
from harness.specs.task import HeadRecipe
from harness.victims.build import TrainedVictim

MAX_POOL = 4000  # candidates polished at most: the joint fit is cubic in the pool (3,200 took 1-3 minutes on one core)


def polish_stage(result: AttackResult, trained: TrainedVictim, emb: Embedded, recipe: HeadRecipe, pixels: bool) -> AttackResult:
    """`result` with its finite candidates polished for the attack's `polish` steps, in the victim's frame (the
    candidates come and go back centred by the members' mean, as attack_stage gives them); the result as it is where
    the polish does not run: `polish: 0` or an attack without it, a pixel head (its box prior is not part of the
    polish; not measured there), a linear head (no search), or a head the closed form does not cover."""
    steps = int(result.params.get("polish", 0) or 0)
    if not steps or pixels or trained.linear or not polishable(trained.head, recipe.loss):
        return result
    ok = finite_candidates(result)
    if int(ok.sum()) > MAX_POOL:  # the joint fit is cubic in the pool: the heaviest candidates by the search's own λ
        weight = candidate_weight(result.lambdas).double().masked_fill(~ok, -1.0)
        ok = torch.zeros_like(ok)
        ok[torch.argsort(weight, descending=True)[:MAX_POOL]] = True
    if not ok.any():
        return result
    frame, mean = trained.frame, emb.mean.double()
    x = frame.apply(result.candidates[ok].double() + mean)
    # the weights the search used (unset, as a sweep's merged shards state the task's params: the attack's default)
    weights = search_layer_weights(result.params.get("layer_weights"), len(trained.head.layers))
    done = polish(trained.head, recipe.loss, x, result.labels[ok], steps, layer_weights=weights)
    candidates = result.candidates.clone()
    candidates[ok] = (frame.to_raw(done.x) - mean).to(candidates.dtype)
    return replace(result, candidates=candidates, polish=done.record())


def polish_line(record: dict) -> str:
    """The run summary's line for a victim's polish (AttackResult.polish)."""
    return (f"    polish: {record['steps']} steps over the {record['candidates']} candidates the joint fit weighs (λ > 0), joint residual "
            f"{record['residual_before']:.3g} -> {record['residual_after']:.3g} in {record['seconds']:.1f}s")

"""What a linear head gives away: for a head with no hidden layer the KKT condition reads
W = sum_i lambda_i y_i x_i (per class for cross-entropy), a weighted sum of the members. No search
can split that sum into members, so instead of a meaningless search the harness scores the sum
itself (one direction per class) against members and non-members: a membership signal, no more."""

from __future__ import annotations

import time

import torch

from harness.attacks.base import AttackResult, RunRecord, Victim
from harness.attacks.common import default_typical_norm

NOTE = "linear head: the KKT condition fixes only a weighted sum of the members; no per-member reconstruction"


def linear_signal(victim: Victim, typical_norm: float | None = None) -> AttackResult:
    t0 = time.perf_counter()
    w = victim.head.layers[0].weight.detach().double()
    if w.shape[0] == 1:  # binary: the sum points to class 1, its opposite to class 0
        dirs, labels = torch.stack([-w[0], w[0]]), torch.tensor([0, 1])
    else:  # one row per class, less the rows' mean (softmax is shift-invariant)
        dirs, labels = w - w.mean(0, keepdim=True), torch.arange(w.shape[0])
    typ = typical_norm or default_typical_norm(victim)
    cands = (dirs / dirs.norm(dim=1, keepdim=True).clamp_min(1e-30) * typ).float()
    run = RunRecord(0, {"method": "weighted-sum", "note": NOTE}, "ok", 0, 0.0, time.perf_counter() - t0)
    return AttackResult(cands, labels, torch.zeros(len(cands)), torch.zeros(len(cands), dtype=torch.long), [run],
                        {"method": "weighted-sum"}, wall_s=time.perf_counter() - t0)

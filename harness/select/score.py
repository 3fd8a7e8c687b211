"""Score a ranked selection against the ground truth (the harness's job, never the attacker's).

A selection at rank r is a hit when its cosine to its nearest member passes the victim's
1%-FPR threshold and that member was not already claimed by a higher-ranked selection
(reconstructions of *distinct* members). precision@k = hits in the top k / k (fewer than k selections count the
missing ones as misses, so a selection of 2 clusters cannot score 1.0 at k = 20);
recall@k = distinct members recovered in the top k / n.
The naive baseline ranks candidates by their run's final KKT loss (lowest first), then by lambda.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from harness.attacks.base import lambda_size
from harness.scoring.embedding import cosine_matrix

KS = (10, 20, 50)


@dataclass
class TopK:
    ks: tuple[int, ...]
    precision: dict[int, float]
    recall: dict[int, float]
    hits: np.ndarray  # (r,) bool: rank r recovered a new member
    member: np.ndarray  # (r,) nearest member of each ranked vector
    score: np.ndarray  # (r,) its cosine

    def row(self, prefix: str) -> dict:
        out = {}
        for k in self.ks:
            out[f"{prefix}_precision_at_{k}"] = self.precision[k]
            out[f"{prefix}_recall_at_{k}"] = self.recall[k]
        return out


def score_selection(
    ranked: torch.Tensor, members: torch.Tensor, threshold: float, ks: tuple[int, ...] = KS
) -> TopK:
    """`ranked` (r, d): vectors best first, in the same (centred) space as `members` (n, d)."""
    n, r = len(members), len(ranked)
    if r == 0 or n == 0 or not np.isfinite(threshold):
        empty = np.zeros(0)
        return TopK(ks, {k: 0.0 for k in ks}, {k: 0.0 for k in ks}, empty.astype(bool), empty.astype(int), empty)
    sim = cosine_matrix(ranked, members).numpy()
    best, member = sim.max(1), sim.argmax(1)
    claimed: set[int] = set()
    hits = np.zeros(r, dtype=bool)
    for i in range(r):
        if best[i] > threshold and int(member[i]) not in claimed:
            hits[i] = True
            claimed.add(int(member[i]))
    cum = np.cumsum(hits)
    prec = {k: float(cum[min(k, r) - 1] / k) for k in ks}
    rec = {k: float(cum[min(k, r) - 1] / n) for k in ks}
    return TopK(ks, prec, rec, hits, member, best)


def lowest_loss_order(
    run_ids: torch.Tensor | np.ndarray,
    run_losses: dict[int, float],
    lambdas: torch.Tensor | np.ndarray | None = None,
    finite: np.ndarray | None = None,
) -> np.ndarray:
    """Candidate indices ranked by their run's final KKT loss (lowest first), then larger lambda first."""
    run_ids = np.asarray(run_ids, dtype=np.int64)
    m = len(run_ids)
    loss = np.array([run_losses.get(int(r), np.nan) for r in run_ids], dtype=np.float64)
    loss = np.where(np.isfinite(loss), loss, np.inf)
    lam = lambda_size(lambdas, m)
    order = np.lexsort((-lam, loss))
    if finite is not None:
        order = order[np.asarray(finite, dtype=bool)[order]]
    return order

"""Cosine matching of candidates to members and non-members, and the 1%-FPR threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, d) x (m, d) -> (n, m) cosine similarities, computed in float64."""
    a = torch.nn.functional.normalize(a.double(), dim=1, eps=1e-12)
    b = torch.nn.functional.normalize(b.double(), dim=1, eps=1e-12)
    return a @ b.T


@dataclass
class MatchScores:
    member_best: np.ndarray  # (n,) best cosine of each member to any candidate
    member_best_idx: np.ndarray  # (n,) index of that candidate
    nonmember_best: np.ndarray  # (k,) best cosine of each non-member to any candidate
    candidate_best: np.ndarray  # (m,) best cosine of each candidate to any member
    candidate_member: np.ndarray  # (m,) index of that member
    threshold: float  # the similarity at which `fpr` of non-members pass
    fpr: float
    tpr: float  # fraction of members whose best cosine exceeds the threshold

    def passed(self, threshold: float | None = None) -> np.ndarray:
        return self.member_best > (self.threshold if threshold is None else threshold)


def threshold_at_fpr(nonmember_scores: np.ndarray, fpr: float = 0.01) -> float:
    """The smallest threshold t with at most `fpr` of non-members scoring strictly above t."""
    s = np.sort(np.asarray(nonmember_scores, dtype=np.float64))[::-1]
    if len(s) == 0:
        return float("nan")
    k = int(np.floor(fpr * len(s)))  # this many non-members may pass
    return float(s[k]) if k < len(s) else float(s[-1])


def match(
    candidates: torch.Tensor,
    members: torch.Tensor,
    nonmembers: torch.Tensor,
    fpr: float = 0.01,
) -> MatchScores:
    """Best-candidate cosine per member and per non-member (all in the same, e.g. centred, space)."""
    if len(candidates) == 0:
        raise ValueError("no candidates to score")
    mc = cosine_matrix(members, candidates)
    mbest, midx = mc.max(1)
    cbest, cidx = mc.max(0)
    nbest = cosine_matrix(nonmembers, candidates).max(1).values if len(nonmembers) else torch.empty(0)
    thr = threshold_at_fpr(nbest.numpy(), fpr)
    tpr = float((mbest.numpy() > thr).mean()) if np.isfinite(thr) else float("nan")
    return MatchScores(
        member_best=mbest.numpy(),
        member_best_idx=midx.numpy(),
        nonmember_best=nbest.numpy(),
        candidate_best=cbest.numpy(),
        candidate_member=cidx.numpy(),
        threshold=thr,
        fpr=fpr,
        tpr=tpr,
    )

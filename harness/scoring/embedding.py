"""Cosine matching of candidates to members and non-members, and the 1%-FPR threshold.

Each member is also matched against the public inputs themselves (the non-members, which the
attacker holds): a member that some public input already resembles is no evidence of leakage when a
candidate matches it, since the attacker could have started from, or drifted to, that input. So the
scores say how many members the public inputs alone match, and how many a candidate matches more
closely than any public input does (`beyond_public`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from harness.scoring.verdict import percent


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
    member_public: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) best cosine of each member to a public input
    good_first_half: int | None = None  # members at cosine > 0.8 from the first half of the search (scoring/saturation.py)

    def passed(self, threshold: float | None = None) -> np.ndarray:
        return self.member_best > (self.threshold if threshold is None else threshold)

    @property
    def measured(self) -> bool:
        """False where no candidate was finite (every run diverged): no threshold, nothing measured (not 0 found)."""
        return bool(np.isfinite(self.member_best).any())

    def public_good(self, good: float) -> int | None:
        """Members a public input alone matches above `good`; None without public inputs."""
        return public_good(self.member_public, good)

    def beyond_public(self, good: float) -> int | None:
        """Members whose best candidate is above `good` and closer to them than any public input."""
        return beyond_public(self.member_best, self.member_public, good)


def public_good(member_public: np.ndarray, good: float) -> int | None:
    return int((member_public > good).sum()) if len(member_public) else None


def beyond_public(member_best: np.ndarray, member_public: np.ndarray, good: float) -> int | None:
    if not len(member_public):
        return None
    return int(((member_best > good) & (member_best > member_public)).sum())


def control_note(fpr: float, n_control: int | None) -> str | None:
    """A caution where the control is too small for the false-positive rate asked: with n non-members the
    threshold is one of n scores, and no rate below 1/n can be told from zero (None when n >= 1/fpr)."""
    if not n_control or n_control * fpr >= 1 - 1e-9:
        return None
    return (f"{n_control} non-members resolve no false-positive rate below {percent(1 / n_control)}, not {percent(fpr)}: "
            f"give the task at least {int(np.ceil(1 / fpr - 1e-9))} non-members in its control")


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
    public: torch.Tensor | None = None,
) -> MatchScores:
    """Best-candidate cosine per member and per non-member (all in the same, e.g. centred, space), and each
    member's best cosine to a public input (`public`, default the non-members: the attacker holds them)."""
    if len(candidates) == 0:
        raise ValueError("no candidates to score")
    public = nonmembers if public is None else public
    mc = cosine_matrix(members, candidates)
    mbest, midx = mc.max(1)
    cbest, cidx = mc.max(0)
    nbest = cosine_matrix(nonmembers, candidates).max(1).values if len(nonmembers) else torch.empty(0)
    member_public = cosine_matrix(members, public).max(1).values if len(public) else torch.empty(0)
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
        member_public=member_public.numpy(),
    )

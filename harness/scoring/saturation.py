"""How far the search had got halfway: the members that the first half of its runs reconstruct, beside the
whole search's count.

The runs are taken in run-id order: a bracket's restarts, then the next bracket's (which may start from what
earlier ones found), and a sharded attack's shards one after another; the first half is the runs with the lower
ids, half the search's runs and so about half its budget. A second half that adds a tenth or more of the members
says the count is still growing with the budget, and a larger one may find more; one that adds nothing says more
of the same search is unlikely to (docs/attack.md, "Is the count the budget's?"). Nothing here reads more than the
scores do: the candidates, their run ids, and the members.
"""

from __future__ import annotations

import torch

from harness.attacks.base import AttackResult
from harness.scoring.embedding import cosine_matrix


def first_half(result: AttackResult) -> torch.Tensor | None:
    """(m,) bool: the finite candidates of the first half of the runs (by run id); None with fewer than two runs
    (no half to compare)."""
    ids = sorted(r.run_id for r in result.runs)
    if len(ids) < 2 or not len(result.candidates):
        return None
    cut = ids[len(ids) // 2]  # the first len // 2 runs have lower ids
    return (result.run_ids < cut) & torch.isfinite(result.candidates).all(1)


def count_cosine(members: torch.Tensor, candidates: torch.Tensor, good: float) -> int:
    """Members with a candidate at cosine > `good` (0 without candidates)."""
    if not len(candidates):
        return 0
    return int((cosine_matrix(members, candidates).max(1).values > good).sum())


def count_ssim(members: torch.Tensor, candidates: torch.Tensor, mean: torch.Tensor, shape, device: str = "cpu") -> int:
    """Members with a candidate at SSIM > 0.4 (the pixel score's rule and screen: scoring/pixels.py)."""
    from harness.scoring.pixels import GOOD_SSIM, best_ssim, to_images

    if not len(candidates):
        return 0
    best, _ = best_ssim(to_images(members, mean, shape), to_images(candidates, mean, shape), device=device)
    return int((best > GOOD_SSIM).sum())

"""How far the search had got halfway: the members that the first half of the search reconstructs, beside the
whole search's count.

The first half is the first half of kkt's brackets (later brackets may start from what earlier ones found), or of
the runs of an attack whose restarts all keep their candidates: about half the search's budget. A second half that
adds a tenth or more of the members says the count was still growing with the budget and a larger one may find
more. One that adds nothing is no proof that the count is final: a longer search can still add members
(docs/attack.md, "Is the count the budget's?"). Nothing here reads more than the scores do: the candidates, their
runs, and the members.
"""

from __future__ import annotations

import torch

from harness.attacks.base import AttackResult
from harness.scoring.embedding import cosine_matrix


def first_half(result: AttackResult) -> torch.Tensor | None:
    """(m,) bool: the finite candidates of the search's first half: its first B // 2 brackets where its runs record
    their bracket (kkt: with successive halving a bracket's candidates come from the restarts that outlived its
    rungs, whatever their ids; a sharded attack's shards each ran every bracket), else its first half of runs by id
    where none was pruned. None where there is no half to compare: one bracket, or restarts pruned without brackets."""
    runs = result.runs
    if not len(result.candidates) or not runs:
        return None
    if any("bracket" in r.settings for r in runs):
        rounds = {r.run_id: int(r.settings.get("bracket", 0)) for r in runs}
    elif any(r.status == "pruned" for r in runs):
        return None
    else:
        rounds = {r.run_id: k for k, r in enumerate(sorted(runs, key=lambda r: r.run_id))}
    total = max(rounds.values()) + 1
    if total < 2:
        return None
    early = torch.tensor([i for i, b in rounds.items() if b < total // 2], dtype=result.run_ids.dtype)
    return torch.isin(result.run_ids, early) & torch.isfinite(result.candidates).all(1)


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

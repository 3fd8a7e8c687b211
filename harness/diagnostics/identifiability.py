"""Does the victim's KKT loss single out its members? Start the attack at the members (plus noise)
and from scratch with the same settings, then compare where each ends: loss and cosine.

If runs started at the members drift away while their loss keeps falling, or runs from scratch
reach a lower loss far from every member, the head does not identify its members: its equations
admit mixtures (measured on MiniLM/SST-2 heads whose units fire on almost every member), and no
search on this loss can reconstruct them. Needs the members, so the harness runs it, not an attacker.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.attacks import make_attack
from harness.attacks.base import Victim
from harness.attacks.margins import balanced_labels
from harness.scoring.embedding import cosine_matrix


@dataclass
class Identifiability:
    noise: float  # relative noise added to the planted members
    start_cos: float  # mean cosine of the planted starts to their member
    end_cos: float  # mean cosine after the attack, each member to its own planted candidate
    end_good: int  # members still at cosine > 0.8 in the best planted run
    planted_loss: float  # best final relative KKT residual of the planted runs
    kept_loss: float  # the final loss of the planted run that end_good counts (the one that kept its members best)
    scratch_loss: float  # best final relative KKT residual of the same attack from its own init
    scratch_best_cos: float  # mean over members of the best cosine of any scratch candidate

    @property
    def loss_separates(self) -> bool:
        return self.planted_loss < self.scratch_loss


def planted_start(members: torch.Tensor, labels: torch.Tensor, num_classes: int, restarts: int,
                  noise: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(restarts, n, d) starts: the members in the attack's label order, plus `noise` x their norm of
    Gaussian noise; and that order (indices into `members`)."""
    want = balanced_labels(len(members), num_classes)
    order, used = [], set()
    for c in want.tolist():
        i = next((i for i in range(len(members)) if int(labels[i]) == c and i not in used), None)
        if i is None:
            raise ValueError("the planted check needs the same number of members in every class")
        used.add(i)
        order.append(i)
    base = members[order].double()
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(restarts, *base.shape, generator=gen, dtype=base.dtype)
    eps = eps / eps.norm(dim=-1, keepdim=True) * base.norm(dim=-1, keepdim=True) * noise
    return base.unsqueeze(0) + eps, torch.tensor(order)


def check(victim: Victim, members: torch.Tensor, labels: torch.Tensor, params: dict, noise: float = 0.3,
          seed: int = 0, scratch_params: dict | None = None, free: int = 0) -> Identifiability:
    """Run `kkt` with `params` from the planted members, and with `scratch_params` (default: `params`) from
    the attack's own initialisation; m = the member count plus `free` candidates.

    The `free` candidates start as Gaussian points at the members' median norm beside the planted ones.
    A search with m = 2n candidates fits θ with n more of them than the members alone can, so its loss is
    compared fairly with planted runs that have as many: `free` = the search's m minus n."""
    if free < 0:
        raise ValueError(f"free candidates must be >= 0, got {free}")
    n = len(members)
    p = {**params, "m": n + free, "rungs": 0, "brackets": 1, "seed": seed}
    p.setdefault("restarts", 4)
    start, order = planted_start(members, labels, victim.num_classes, p["restarts"], noise, seed)
    if free:
        gen = torch.Generator().manual_seed(seed + 1)
        extra = torch.randn(p["restarts"], free, start.shape[-1], generator=gen, dtype=start.dtype)
        extra = extra / extra.norm(dim=-1, keepdim=True) * members.double().norm(dim=1).median()
        start = torch.cat([start, extra], 1)  # labels 0,1,0,1,..: the planted members keep theirs
    planted = make_attack("kkt", p).reconstruct(victim, progress=False, start=start)
    scratch = make_attack("kkt", {**p, **(scratch_params or {})}).reconstruct(victim, progress=False)
    mem = members[order].double()
    cos0 = torch.nn.functional.cosine_similarity(start[:, :n], mem.unsqueeze(0), dim=-1)
    runs = sorted(set(planted.run_ids.tolist()))  # a diverged run leaves no candidates
    ends = torch.stack([planted.candidates[planted.run_ids == r][:n].double() for r in runs]) if runs else mem[None] * float("nan")
    cos1 = torch.nn.functional.cosine_similarity(ends, mem.unsqueeze(0), dim=-1).nan_to_num(-1.0)
    best_run = int(cos1.mean(1).argmax())
    sc = cosine_matrix(scratch.candidates, mem)
    best = lambda res: min((r.final_loss for r in res.runs if r.status == "ok"), default=float("nan"))  # noqa: E731
    return Identifiability(
        noise=noise, start_cos=float(cos0.mean()), end_cos=float(cos1.mean()), end_good=int((cos1[best_run] > 0.8).sum()),
        planted_loss=best(planted), kept_loss=_final(planted, runs[best_run]) if runs else float("nan"), scratch_loss=best(scratch),
        scratch_best_cos=float(sc.nan_to_num(-1.0).max(0).values.mean()) if len(sc) else float("nan"),
    )


def _final(res, run_id: int) -> float:
    """The final loss of run `run_id` of `res`."""
    return next(r.final_loss for r in res.runs if r.run_id == run_id)

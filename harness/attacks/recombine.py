"""Restarts started from what earlier restarts found (recombination across brackets).

Each restart must fit all n members with its m candidates at once; at n = 50-100 a restart ends with
some candidates on members and the rest in poorer minima, and different restarts find different
members. A recombined restart starts from the pooled candidates of earlier restarts: per class slot,
candidates drawn in proportion to their |lambda| (a candidate that explains much of theta carries a
large multiplier), skipping near-duplicates of ones already drawn. What the pooled candidates leave
unexplained of theta is then the uncovered members' share, and the free slots move toward it.
Data-free like the rest of the search: it reads only the attack's own candidates and multipliers.
"""

from __future__ import annotations

import torch


def candidate_weight(lam: torch.Tensor) -> torch.Tensor:
    """(m,) each candidate's |lambda| (summed over outputs where a candidate has one per output)."""
    return lam.abs().flatten(1).sum(1) if lam.dim() > 1 else lam.abs()


class Pool:
    """Candidates (in input space, centred) with their |lambda| and class label, from finished restarts."""

    def __init__(self, max_size: int = 20_000):
        self.x: torch.Tensor | None = None
        self.weight: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.max_size = max_size

    def __len__(self) -> int:
        return 0 if self.x is None else len(self.x)

    def add(self, x: torch.Tensor, lam: torch.Tensor, labels: torch.Tensor) -> None:
        """One restart's candidates x (m, d), multipliers lam (m[, C]) and labels (m,)."""
        w = candidate_weight(lam)
        ok = torch.isfinite(x).all(1) & torch.isfinite(w) & (w > 0)
        x, w, labels = x[ok].float(), w[ok].float(), labels[ok]
        if self.x is None:
            self.x, self.weight, self.labels = x, w, labels
        else:
            self.x, self.weight = torch.cat([self.x, x]), torch.cat([self.weight, w])
            self.labels = torch.cat([self.labels, labels])
        if len(self.x) > self.max_size:  # keep the heaviest
            keep = torch.argsort(self.weight, descending=True)[: self.max_size]
            self.x, self.weight, self.labels = self.x[keep], self.weight[keep], self.labels[keep]

    def draw(self, base: torch.Tensor, labels: torch.Tensor, gen: torch.Generator, dup_cos: float = 0.9,
             fill: float = 0.75) -> torch.Tensor:
        """A restart's start: `base` (m, d) with up to `fill` of each class's slots replaced by pooled
        candidates of that class, drawn with probability ~ |lambda| (Gumbel top-k) and no two within
        cosine `dup_cos` of each other. The slots left keep `base`, so every restart keeps room to move."""
        out = base.clone()
        if self.x is None:
            return out
        for c in labels.unique().tolist():
            slots = torch.nonzero(labels == c).flatten()
            mine = torch.nonzero(self.labels == c).flatten()
            if len(mine) == 0:
                continue
            w = self.weight[mine]
            g = -torch.log(-torch.log(torch.rand(len(mine), generator=gen).clamp(1e-12, 1 - 1e-12)))
            order = mine[torch.argsort(torch.log(w / w.sum()) + g, descending=True)]
            want = int(fill * len(slots))
            picked: list[torch.Tensor] = []
            for i in order.tolist():
                if len(picked) >= want:
                    break
                v = self.x[i]
                if picked:
                    p = torch.stack(picked)
                    cos = (p @ v) / (p.norm(dim=1) * v.norm()).clamp_min(1e-12)
                    if bool((cos > dup_cos).any()):
                        continue
                picked.append(v)
            if picked:
                out[slots[: len(picked)]] = torch.stack(picked).to(out)
        return out

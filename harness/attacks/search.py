"""The search over restarts: per-restart settings, successive-halving rungs, reuse of good settings."""

from __future__ import annotations

import math

import torch


def log_uniform(lo: float, hi: float, n: int, gen: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    return torch.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def uniform(lo: float, hi: float, n: int, gen: torch.Generator) -> torch.Tensor:
    return lo + torch.rand(n, generator=gen, dtype=torch.float64) * (hi - lo)


def around(best: torch.Tensor, n: int, spread: float, lo: float, hi: float, gen) -> torch.Tensor:
    """Reuse: log-normal perturbations of previously good values, clipped to [lo, hi]."""
    pick = best[torch.randint(len(best), (n,), generator=gen)]
    return (pick * torch.exp(spread * torch.randn(n, generator=gen, dtype=torch.float64))).clamp(lo, hi)


def rung_iterations(iterations: int, rungs: int, eta: int) -> list[int]:
    """Iterations at which to prune (successive halving): iterations / eta^k, k = rungs..1."""
    its = sorted({max(1, int(iterations / eta**k)) for k in range(rungs, 0, -1)})
    return [i for i in its if i < iterations]


def survivors(score: torch.Tensor, keep_frac: float) -> torch.Tensor:
    """Indices of the best (lowest-loss) ceil(keep_frac * R) restarts; NaN counts as worst."""
    s = torch.nan_to_num(score, nan=float("inf"))
    k = max(1, math.ceil(keep_frac * len(s)))
    return torch.argsort(s)[:k]


def alpha_schedule(total: int, start: float, end: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """The modified ReLU's slope at each of `total` iterations, annealed geometrically from `start` to `end`
    (every restart alike); one tensor for the run, so that an iteration reads its value instead of computing it."""
    t = torch.arange(total, dtype=torch.float64) / max(1, total - 1)  # 0 to 1
    return (start * (end / start) ** t).to(device=device, dtype=dtype)

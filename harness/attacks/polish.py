"""Polish: the search's candidates, all restarts together, moved by exact least squares on the first layer.

For a ReLU head (any depth) trained on a margin loss (binary or multiclass), the stationarity condition on the
first layer is linear in the candidates once their activation patterns, multipliers λ and (multiclass) rivals'
split are fixed: W1 ≈ S X, with S's column i candidate i's backprop signal at the first layer, δ_i = λ_i ∂Φ_i/∂z1
(one hidden layer and one output: S_ji = a_j P_ij λ_i y_i, a the output weights, P the pattern, y_i = ±1). A polish step
solves that for X in one go, (SᵀS + μI) X = SᵀW1 + μX (μ = `rho` × the mean of diag(SᵀS): candidates the fit does
not use stay where they are), and takes the largest step toward it, from 1 down to 1/64, that lowers the whole
residual ‖θ − Σ λ_i ∇θ Φ_i‖² / ‖θ‖² with λ ≥ 0 refitted jointly over the pool (the oracle's Gram fit,
diagnostics/oracle.py; each layer's term weighted as the search weighed it, kkt's `layer_weights`); no step that lowers
it ends the polish. The patterns and λ then follow the new X.

Where `kkt`'s gradient steps move each restart's candidates within that restart, the polish fits every restart's
candidates at once: a member half-found by two restarts is pulled to it by the whole first layer. It reads only
the head (data-free, like the search). Measured in docs/attack.md, "Polish".
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from harness.attacks.margins import head_form
from harness.attacks.objective import HeadTensors
from harness.diagnostics.oracle import margin_signals, signal_gram, theta_fit
from harness.heads.mlp import MLPHead

STEP_FLOOR = 1 / 64  # the smallest step toward the least-squares solution tried before the polish stops


@dataclass
class Polished:
    x: torch.Tensor  # (m, d) the candidates after the polish (those the joint fit gives no weight are unchanged)
    steps: int  # polish steps taken (each lowered the residual)
    candidates: int  # candidates with weight in the joint fit (the ones polished)
    before: float  # the pool's joint residual before the polish
    after: float  # and after
    seconds: float

    def record(self) -> dict:
        return {"steps": self.steps, "candidates": self.candidates, "residual_before": self.before,
                "residual_after": self.after, "seconds": round(self.seconds, 3)}


def polishable(head: MLPHead, loss: str) -> bool:
    """The polish's closed form holds for ReLU heads with a hidden layer, trained on a margin loss (not regression)."""
    return len(head.layers) >= 2 and head.activation == "relu" and head_form(loss, head.out_dim) != "regression"


def polish(head: MLPHead, loss: str, x: torch.Tensor, labels: torch.Tensor, steps: int, rho: float = 1e-2,
           layer_weights=None) -> Polished:
    """Polish candidates `x` (m, d) of classes `labels` (0 to C-1) against `head` for at most `steps` steps
    (polishable heads only), steps judged by the residual with each layer's term times its weight in `layer_weights`
    (None: 1 each). Works in float64 on the CPU; returns the candidates in `x`'s dtype."""
    if not polishable(head, loss):
        raise ValueError("polish needs a ReLU head with a hidden layer and a margin loss (logistic or ce)")
    t0 = time.perf_counter()
    h = copy.deepcopy(head).double().cpu()
    x64, y = x.detach().double().cpu(), labels.cpu()
    # Σ_k w_k ‖θ_k‖², as the search weighs θ: once, for every fit divides by it
    tt = float(HeadTensors.of(h, torch.float64, layer_weights=layer_weights).theta_sq)
    lam, r, first = _fit(h, loss, x64, y, layer_weights, tt)
    live = lam > 0
    xs, ys, lam, first = x64[live], y[live], lam[live], first[live]
    before, taken = r, 0
    for _ in range(steps if len(xs) else 0):
        target = _solve(h, xs, lam[:, None] * first, rho)
        t = 1.0
        while t >= STEP_FLOOR:
            xn = xs + t * (target - xs)
            ln, rn, fn = _fit(h, loss, xn, ys, layer_weights, tt)
            if rn < r:
                break
            t /= 2
        else:
            break
        xs, lam, r, first, taken = xn, ln, rn, fn, taken + 1
    out = x64.clone()
    out[live] = xs
    return Polished(out.to(x.dtype).to(x.device), taken, int(live.sum()), before, r, time.perf_counter() - t0)


def _fit(h: MLPHead, loss: str, x: torch.Tensor, y: torch.Tensor, layer_weights,
         tt: float) -> tuple[torch.Tensor, float, torch.Tensor]:
    """(λ ≥ 0 fitted jointly over the candidates, the relative residual Σ_k w_k ‖θ_k − G_k‖² / Σ_k w_k ‖θ_k‖² (`tt`
    the denominator), and the candidates' first-layer margin signals ∂Φ_i/∂z1 (m, h), which the next step's S is made
    of)."""
    signals = margin_signals(h, loss, x, y)
    gram, c = signal_gram(h, signals, layer_weights)
    lam, residual = theta_fit(gram.numpy(), c.numpy(), tt, nonnegative=True)
    return torch.from_numpy(lam), residual, signals[2][0]


def _solve(h: MLPHead, x, signals, rho: float) -> torch.Tensor:
    """argmin_X ‖W1 − S X‖² + μ‖X − x‖² for the patterns, λ and rivals' split of candidates x (module docstring):
    S's columns are the candidates' first-layer margin signals scaled by λ (`signals`, (m, h): Φ is linear in the
    multiplier)."""
    s = signals.T  # (h, m)
    w1 = h.layers[0].weight.detach()
    sts = s.T @ s
    mu = rho * float(sts.diagonal().mean())
    if mu <= 0:
        return x
    return torch.linalg.solve(sts + mu * torch.eye(len(x), dtype=x.dtype), s.T @ w1 + mu * x)

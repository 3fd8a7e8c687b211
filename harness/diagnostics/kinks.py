"""The oracle fit with the ReLU's kinks: a member whose pre-activation at a unit is (numerically) zero adds any
slope in [0, 1] there.

The KKT conditions of a ReLU head are stated with Clarke subgradients (Lyu & Li 2020, the condition Haim et al.
reconstruct from): θ = Σ λ_i g_i with g_i in ∂°Φ_i(θ), and ∂°relu(0) = [0, 1]. Training with weight decay pushes
members onto units' kinks as n grows: on a MiniLM / SST-2 head at n = 250, 20,000 more full-batch GD steps left
16% of (member, unit) pairs within 1% of the median |pre-activation| from zero and the gradient norm where it was
(1.5e-3). With the hard slopes 1[z > 0] the members explain θ to a residual of 0.10; with those pairs' slopes
free in [0, 1], to 0.0006: the head is at a KKT point, and the hard residual said it was not (docs/attack.md,
"Kinks"). Only one-hidden-layer ReLU heads with margins (logistic, CE) are fitted here.

With C_ij = λ_i δ_ij s_ij (δ_ij = ∂Φ_i/∂h_j, s_ij the slope) the fit is, over the rows x̃_i = [x_i, 1],
‖W̃1 − Cᵀ X̃‖² + ‖V − (λ A)ᵀ R̃‖² with R̃ = [relu(z), 1] and A the margins' output coefficients. The first term is
‖W̃1‖² − 2 Σ C∘Z + Σ C∘(G C), G = X̃ X̃ᵀ, Z = X̃ W̃1ᵀ the pre-activations: n² k per evaluation, not n k d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize

from harness.attacks.margins import head_form, output_coef
from harness.heads.losses import LossName
from harness.heads.mlp import MLPHead
from harness.progress import bar as progress_bar

KINK_TOL = 1e-2  # a (member, unit) pair is on the unit's kink when |z| < this x the RMS pre-activation
MAX_ITER = 2000  # L-BFGS-B iterations at most (100-300 on the benches' victims)


def kink_pairs(z: torch.Tensor, tol: float = KINK_TOL) -> torch.Tensor:
    """(n, k) mask of the pairs whose pre-activation is within `tol` x the RMS pre-activation of zero."""
    return z.abs() < tol * z.pow(2).mean().sqrt()


@dataclass
class KinkFit:
    residual: float  # ‖θ − Σ λ_i g_i‖² / ‖θ‖²
    parts: np.ndarray  # (n,) each member's part of the fit, ‖λ_i g_i‖
    lam: np.ndarray  # (n,)
    slopes: np.ndarray  # (n, k): 1[z > 0], and the fitted slope on a kink
    pairs: int  # (member, unit) pairs on a kink


def kink_fit(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor, lam0: np.ndarray,
             tol: float = KINK_TOL, progress: bool = False) -> KinkFit | None:
    """The oracle fit with the kinked pairs' slopes free in [0, 1], started from the hard-slope fit's λ `lam0`;
    None for another head or loss, or when no pair is on a kink. `head` and `x` in float64. Seconds at n = 100,
    a minute or more at n = 500 on one thread (`progress` shows a bar)."""
    if loss == "mse" or len(head.layers) != 2 or head.activation != "relu" or tol <= 0:
        return None
    first, last = head.layers
    with torch.no_grad():
        z = first(x)
        kink = kink_pairs(z, tol)
        if not bool(kink.any()):
            return None
        n, ones = len(x), x.new_ones(len(x), 1)
        a = output_coef(head_form(loss, head.out_dim), x.new_ones(n), labels, last(torch.relu(z)))  # (n, O)
        delta = a @ last.weight  # (n, k): ∂Φ_i / ∂h_j
        xt = torch.cat([x, ones], 1) if first.bias is not None else x
        r = torch.cat([torch.relu(z), ones], 1) if last.bias is not None else torch.relu(z)
        v = torch.cat([last.weight, last.bias[:, None]], 1) if last.bias is not None else last.weight
        gram = xt @ xt.T
        w_sq = float(first.weight.pow(2).sum() + (first.bias.pow(2).sum() if first.bias is not None else 0.0))
        theta_sq = w_sq + float(v.pow(2).sum())
        hard = (z > 0).to(x.dtype)

    def parts_of(p: torch.Tensor):
        """(λ, slopes, C = λ δ s) of the variables p = [λ, the kinked pairs' slopes]."""
        lam, slope = p[:n], hard.masked_scatter(kink, p[n:])
        return lam, slope, lam[:, None] * delta * slope

    # the variables scaled by the root of the objective's curvature along each (at the start): λ and the slopes
    # differ by orders of magnitude, and unscaled L-BFGS-B stops at its iteration limit far from the optimum
    lam0 = torch.from_numpy(np.clip(lam0, 0.0, None)).to(x.dtype)
    with torch.no_grad():
        x_sq = xt.pow(2).sum(1)
        g_sq = (delta * hard).pow(2).sum(1) * x_sq + a.pow(2).sum(1) * r.pow(2).sum(1)
        s_sq = ((lam0[:, None] * delta).pow(2) * x_sq[:, None])[kink]
        curv = torch.cat([g_sq, s_sq]) / theta_sq
        scale = curv.clamp_min(1e-6 * float(curv.max())).sqrt()

    def fun(q_np: np.ndarray):
        q = torch.from_numpy(q_np).requires_grad_(True)
        lam, _, c = parts_of(q / scale)
        res = (w_sq - 2 * (c * z).sum() + (c * (gram @ c)).sum() + (v - (lam[:, None] * a).T @ r).pow(2).sum()) / theta_sq
        (g,) = torch.autograd.grad(res, q)
        return float(res.detach()), g.numpy()

    start = (torch.cat([lam0, hard[kink]]) * scale).numpy()
    top = scale[n:].numpy()
    bounds = [(0.0, None)] * n + [(0.0, float(t)) for t in top]
    with progress_bar(total=MAX_ITER, desc="oracle fit (kinks)", unit="it", disable=not progress) as bar:
        fit = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=bounds, callback=lambda _: bar.update(1),
                       options={"maxiter": MAX_ITER, "ftol": 1e-10, "gtol": 1e-12})
    with torch.no_grad():
        lam, slope, c = parts_of(torch.from_numpy(fit.x) / scale)
        norms = c.pow(2).sum(1) * x_sq + (lam[:, None] * a).pow(2).sum(1) * r.pow(2).sum(1)
    return KinkFit(max(float(fit.fun), 0.0), norms.sqrt().numpy(), lam.numpy(), slope.numpy(), int(kink.sum()))

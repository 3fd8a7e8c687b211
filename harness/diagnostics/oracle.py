"""Oracle residual: how well the true members explain θ as Σ λ_i ∇θ Φ_i (λ by least squares)."""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.optimize import nnls

from harness.attacks.margins import head_form, margins
from harness.heads.losses import LossName
from harness.heads.mlp import MLPHead


def member_jacobian(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(P, k) matrix whose columns are ∇θ Φ_i for each margin Φ_i of the members."""
    params = list(head.parameters())
    phi = margins(head_form(loss, head.out_dim), labels, head(x)).reshape(-1)
    cols = []
    for i in range(len(phi)):
        grads = torch.autograd.grad(phi[i], params, retain_graph=True, allow_unused=True)
        cols.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]))
    return torch.stack(cols, 1)


def oracle_residual(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor) -> float:
    """min_λ ‖θ − J λ‖² / ‖θ‖², with λ ≥ 0 for margins (logistic, CE) and real λ for MSE."""
    if not all(torch.isfinite(p).all() for p in head.parameters()):
        return float("nan")  # a diverged head: nothing to explain
    head = copy.deepcopy(head).double()
    jac = member_jacobian(head, loss, x.double(), labels).detach().numpy()
    theta = head.flat_params().numpy()
    if loss == "mse":
        lam, *_ = np.linalg.lstsq(jac, theta, rcond=None)
        res = theta - jac @ lam
    else:
        lam, _ = nnls(jac, theta, maxiter=50 * jac.shape[1])
        res = theta - jac @ lam
    return float(res @ res / (theta @ theta))

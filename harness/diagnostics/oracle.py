"""Oracle residual: how well the true members explain θ as Σ λ_i ∇θ Φ_i (λ by least squares)."""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.optimize import nnls

from harness.attacks.margins import head_form, margins, output_coef
from harness.attacks.objective import layer_weight
from harness.diagnostics.kinks import KINK_TOL, kink_fit
from harness.heads.losses import LossName
from harness.heads.mlp import MLPHead
from harness.heads.train import TrainReport


def member_jacobian(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(P, k) matrix whose columns are ∇θ Φ_i for each margin Φ_i of the members."""
    params = list(head.parameters())
    phi = margins(head_form(loss, head.out_dim), labels, head(x)).reshape(-1)
    cols = []
    for i in range(len(phi)):
        grads = torch.autograd.grad(phi[i], params, retain_graph=True, allow_unused=True)
        cols.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)]))
    return torch.stack(cols, 1)


def oracle_fit(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor,
               kink_tol: float = KINK_TOL, progress: bool = False) -> tuple[float, np.ndarray | None]:
    """(min_λ ‖θ − J λ‖² / ‖θ‖², each member's part of the fit), with λ ≥ 0 for margins (logistic, CE) and real λ
    for MSE. A member's part is the norm of what it adds to the fit: |λ_i|·‖∇θ Φ_i‖ for a margin, ‖Σ_c λ_ic ∇θ h_c(x_i)‖
    over an MSE head's outputs. None for a diverged head. On a one-hidden-layer ReLU head, members on a unit's kink
    (|z| < `kink_tol` x the RMS pre-activation) add any slope in [0, 1] there (kinks.py; 0 keeps the slopes hard)."""
    if not head.is_finite():
        return float("nan"), None  # a diverged head: nothing to explain
    head, x = copy.deepcopy(head).double(), x.double()
    theta = head.flat_params()
    if loss == "mse":  # one column per member and output: through the Jacobian
        jac = member_jacobian(head, loss, x, labels).detach()
        gram, c = jac.T @ jac, jac.T @ theta
    else:
        gram, c = margin_gram(head, loss, x, labels)
    g = gram.numpy()
    lam, residual = theta_fit(g, c.numpy(), float(theta @ theta), nonnegative=loss != "mse")
    if loss == "mse":  # columns member-major (n, C): member i's block of λ and of the Gram
        per = len(lam) // len(x)
        blocks = lam.reshape(len(x), per)
        parts = np.sqrt(np.clip([b @ g[i * per : (i + 1) * per, i * per : (i + 1) * per] @ b for i, b in enumerate(blocks)], 0.0, None))
    else:
        parts = np.abs(lam) * np.sqrt(np.clip(np.diag(g), 0.0, None))
        kinked = kink_fit(head, loss, x, labels, lam, kink_tol, progress)
        if kinked is not None and kinked.residual < residual:
            residual, parts = kinked.residual, kinked.parts
    return residual, parts


def oracle_residual(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor,
                    kink_tol: float = KINK_TOL) -> float:
    """min_λ ‖θ − J λ‖² / ‖θ‖², with λ ≥ 0 for margins (logistic, CE) and real λ for MSE (oracle_fit)."""
    return oracle_fit(head, loss, x, labels, kink_tol)[0]


def stationarity_bound(head: MLPHead, report: TrainReport | None) -> float | None:
    """(‖∇objective‖ / (wd‖θ‖))² for a head whose training report measures a mean loss plus (wd/2)‖θ‖²
    (`report.weight_decay`: the `paper` and `dp-sgd` trainers): the relative
    residual the training's own multipliers λ_i = −ℓ'(Φ_i)/(n·wd) leave, since θ − Σ_i λ_i ∇θ Φ_i = ∇objective / wd
    exactly. So the oracle residual is at most this, without the members: where the two are close, what the members do
    not explain is the head's distance from stationarity (docs/attack.md, "Why the middle layer"). None without weight
    decay (or with a penalty of another form) or without a report."""
    wd = report.weight_decay if report is not None else None
    if not wd or wd <= 0 or not head.is_finite():
        return None
    theta = float(head.flat_params().detach().double().norm())
    return (report.grad_norm / (wd * theta)) ** 2 if theta > 0 else None


def effective_members(parts: np.ndarray | None) -> float | None:
    """How many members θ carries: the participation ratio (Σ p_i)² / Σ p_i² of the members' parts of the oracle fit
    (n when every member weighs the same, 1 when one member is all of it). The search recovers the members with the
    largest parts first (docs/attack.md, "Which members come back"): a head whose count is well below n gives back
    its members nearest the margin, not all of them."""
    if parts is None or not np.isfinite(parts).all() or float((parts ** 2).sum()) == 0.0:
        return None
    return float(parts.sum() ** 2 / (parts ** 2).sum())


@torch.no_grad()
def margin_gram(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(JᵀJ, Jᵀθ) of the members' margin gradients without forming J (P x n: 12 GB in float64 for a
    3072-1000-1 head and 500 members): layer by layer, ∇_{W_k} Φ_i = δ_ki a_(k-1)iᵀ, so
    <∇Φ_i, ∇Φ_j> = Σ_k (δ_ki·δ_kj)(a_(k-1)i·a_(k-1)j + [bias]) and <θ, ∇Φ_i> = Σ_k δ_ki·z_ki."""
    return signal_gram(head, margin_signals(head, loss, x, labels))


def signal_gram(head: MLPHead, signals: tuple[list, list, list], layer_weights=None) -> tuple[torch.Tensor, torch.Tensor]:
    """margin_gram's (JᵀJ, Jᵀθ) from margin_signals' (zs, acts, deltas), each layer's terms times its weight in
    `layer_weights` (None: 1 each; the fit of Σ_k w_k ‖θ_k − G_k‖², as kkt's `layer_weights` searches it)."""
    zs, acts, deltas = signals
    n = len(acts[0])
    gram, c = acts[0].new_zeros(n, n), acts[0].new_zeros(n)
    for k in range(len(head.layers) - 1, -1, -1):  # output layer first, as the signals flow
        w = layer_weight(layer_weights, k)
        if w == 0:
            continue
        ga = acts[k] @ acts[k].T + (1.0 if head.layers[k].bias is not None else 0.0)
        gram += w * (deltas[k] @ deltas[k].T) * ga
        c += w * (deltas[k] * zs[k]).sum(1)
    return gram, c


@torch.no_grad()
def margin_signals(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor) -> tuple[list, list, list]:
    """Per layer k: the pre-activations z_k, the layer's inputs a_(k-1), and the backprop signals δ_k = ∂Φ_i/∂z_k of
    each sample's margin (multiclass: with the rivals' split at the sample's own outputs)."""
    act = {"relu": torch.relu, "tanh": torch.tanh}[head.activation]
    zs, acts, a = [], [x], x
    for k, layer in enumerate(head.layers):
        zs.append(layer(a))
        if k < len(head.layers) - 1:
            a = act(zs[-1])
            acts.append(a)
    form = head_form(loss, head.out_dim)
    deltas = [output_coef(form, torch.ones(len(x), dtype=x.dtype), labels, zs[-1])]  # ∂Φ_i/∂out_i
    for k in range(len(head.layers) - 1, 0, -1):
        z = zs[k - 1]
        slope = (z > 0).to(z.dtype) if head.activation == "relu" else 1 - torch.tanh(z) ** 2
        deltas.insert(0, (deltas[0] @ head.layers[k].weight) * slope)
    return zs, acts, deltas


def theta_fit(gram: np.ndarray, c: np.ndarray, tt: float, nonnegative: bool) -> tuple[np.ndarray, float]:
    """(λ, min_λ ‖θ − J λ‖² / ‖θ‖²) from the normal equations (JᵀJ, Jᵀθ) and tt = ‖θ‖² (gram_solve)."""
    lam = gram_solve(gram, c, nonnegative)
    return lam, max(tt - 2 * float(lam @ c) + float(lam @ gram @ lam), 0.0) / tt


def gram_solve(gram: np.ndarray, c: np.ndarray, nonnegative: bool) -> np.ndarray:
    """argmin_λ ‖θ − J λ‖² (λ ≥ 0 when `nonnegative`) from the k x k normal equations (JᵀJ, Jᵀθ), not J's
    P rows: with JᵀJ = V W Vᵀ, ‖θ − Jλ‖² = ‖W^½ Vᵀ λ − b‖² + const, b = W^-½ Vᵀ Jᵀθ (directions with W ≈ 0
    leave Jλ unchanged and drop out). The same λ as NNLS on J, without an active-set solve over
    millions of rows (a 3072-1000-1 head: P = 3.07M)."""
    w, v = np.linalg.eigh(gram)
    keep = w > max(float(w.max()), 0.0) * 1e-12
    if not keep.any():
        return np.zeros(len(c))
    a = np.sqrt(w[keep])[:, None] * v[:, keep].T
    b = (v[:, keep].T @ c) / np.sqrt(w[keep])
    if nonnegative:
        lam, _ = nnls(a, b, maxiter=50 * len(c))
    else:
        lam, *_ = np.linalg.lstsq(a, b, rcond=None)
    return lam

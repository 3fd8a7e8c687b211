"""The penalties beside the KKT residual: lambda_min on the multipliers and the domain prior (box, norm; the
sphere is a projection), each with its gradient written out for kkt and in torch for kkt-reference."""

from __future__ import annotations

import torch

from harness.attacks.margins import Form
from harness.attacks.skinny import dot, gemm
from harness.victims.frame import Frame


def lambda_penalty(lam: torch.Tensor, lambda_min, form: Form, weight: float = 5.0) -> torch.Tensor:
    """5 * sum_j max(0, lambda_min - lambda_j)^2 per restart (none for regression's real lambdas)."""
    if form == "regression":
        return lam.new_zeros(lam.shape[0])
    return weight * ((lambda_min - lam).clamp_min(0) ** 2).sum(-1)


def lambda_penalty_grad(lam: torch.Tensor, lambda_min, form: Form, weight: float = 5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """lambda_penalty and its gradient in lam, written out."""
    if form == "regression":
        return lam.new_zeros(lam.shape[0]), torch.zeros_like(lam)
    short = (lambda_min - lam).clamp_min(0)
    return weight * short.pow(2).sum(-1), short.mul_(-2 * weight)


def prior_penalty(x: torch.Tensor, prior: str, frame: Frame, typical_norm, box) -> torch.Tensor:
    """Domain prior per restart, in the space where it holds: the box on embeddings (head inputs
    mapped back through the victim's frame), or (||x|| - typical norm)^2 on head inputs, whose
    typical norm is measured in the same frame. The sphere is a projection (project_sphere_)."""
    if prior == "box":
        return _BoxPenalty.apply(x, frame.mean.to(x), None if frame.scale is None else frame.scale.to(x), *box)
    if prior == "norm" and typical_norm:
        return ((x.norm(dim=-1) - typical_norm) ** 2).sum(-1)
    return x.new_zeros(x.shape[0])


def prior_penalty_grad(x: torch.Tensor, prior: str, frame: Frame, typical_norm, box) -> tuple[torch.Tensor, torch.Tensor | None]:
    """prior_penalty and its gradient in x, written out (None where the prior adds no penalty)."""
    if prior == "box":
        return _box_grad(x, frame.mean.to(x), None if frame.scale is None else frame.scale.to(x), *box)
    if prior == "norm" and typical_norm is not None:
        norm = x.norm(dim=-1, keepdim=True)
        off = norm - typical_norm
        return off.pow(2).sum((-1, -2)), x * (2 * off / norm.clamp_min(1e-12))
    return x.new_zeros(x.shape[0]), None


def box_grad_in_coordinates(c, basis, mean, scale, lo, hi, basis_low=None):
    """The box penalty of candidates c (R, m, k) in row-space coordinates, whose inputs are c basis^T,
    and its gradient in c (two products with the (d, k) basis around _box_grad; compiled with the pass, the
    clamp fuses between them and reduced products run them in bfloat16, on basis_low if given: skinny.gemm)."""
    pen, g = _box_grad(gemm(c, basis.T, None if basis_low is None else basis_low.T), mean, scale, lo, hi)
    return pen, gemm(g, basis, basis_low)


def _box_grad(x, mean, scale, lo, hi):
    """sum ||u - clamp(u, lo, hi)||^2 per restart for u = x in embedding space, and its gradient in x:
    2 (u - clamp(u)) * scale."""
    u = x * scale + mean if scale is not None else x + mean
    excess = u.sub_(u.clamp(lo, hi))
    pen = dot(excess, excess)
    return pen, excess.mul_(2) if scale is None else excess.mul_(scale).mul_(2)


class _BoxPenalty(torch.autograd.Function):
    """_box_grad's penalty as an autograd function (its gradient by hand: a few passes over (m, d) where
    autograd records a dozen)."""

    @staticmethod
    def forward(ctx, x, mean, scale, lo, hi):
        pen, grad = _box_grad(x, mean, scale, lo, hi)
        ctx.save_for_backward(grad)
        return pen

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout):
        (grad,) = ctx.saved_tensors
        return grad * gout.view(-1, *[1] * (grad.dim() - 1)), None, None, None, None


@torch.no_grad()
def project_sphere_(x: torch.Tensor, frame: Frame) -> None:
    """Put head inputs back where their embeddings are unit-norm (normalised-embedding prior): along
    the ray in embedding space, then through the frame again (exact for any centring and scaling)."""
    u = frame.to_raw(x)
    x.copy_(frame.apply(u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12)))

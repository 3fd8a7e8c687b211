"""The normalised-embedding prior as a projection, in place: candidates go back where their embeddings are
unit-norm after every step.

In the full input space (x = (u - mean) / scale) the projection goes along the ray in embedding space:
u -> u / |u|, that is x -> (x + c) / rho - c with c = mean / scale and rho = |scale (x + c)|. In W1's row space
(x = B y, B orthonormal columns) the same ray, then the cut back into the row space, is y -> (y + c) / rho - c
with c = B^T (mean / scale) and rho^2 = |D B (y + c) + D r|^2 (D = diag(scale), r = mean / scale - B c, the part
of the mean the row space does not hold), expanded as (y + c)^T Q (y + c) + 2 (y + c).q + kappa with the small
Q = B^T D^2 B (k x k), q = B^T D^2 r and kappa = |D r|^2: one k x k product per candidate instead of mapping
every candidate to the input space and back (two k x d products). Without a scale, in the row space, the
candidates stay on the sphere's cut by the row space: |y + c| = sqrt(1 - |r|^2), exactly on the unit sphere.
Each form is a few passes over the candidates, in place (the temporaries of the written-out form were large
fresh allocations every iteration: on a CPU they cost more than the arithmetic). Its constants are tensors, so
that a compiled iteration (iteration.py) takes them as inputs rather than recompiling for every victim's values.
"""

from __future__ import annotations

import torch

from harness.victims.frame import Frame


class SphereProjection:
    """Puts candidates x (any leading dims, last dim the coordinates) back on the prior's sphere, in place."""

    def __init__(self, frame: Frame, basis: torch.Tensor | None = None):
        mean, scale = frame.mean, frame.scale
        c = mean if scale is None else mean / scale
        self.scale, self.quad = scale, None
        if basis is None:
            self.c, self.radius = c, None
            return
        self.c = c @ basis
        r = c - basis @ self.c
        if scale is None:  # the sphere cut by the row space: |y + c|^2 = 1 - |r|^2
            self.radius = r.new_tensor(max(1.0 - float(r.pow(2).sum()), 1e-6) ** 0.5)
            return
        d2 = scale.pow(2)
        self.radius = None
        self.quad = (basis.T @ (d2[:, None] * basis), (d2 * r) @ basis, (scale * r).pow(2).sum())

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> None:
        y = x.add_(self.c)
        if self.quad is not None:
            q_mat, q, kappa = self.quad
            rho2 = torch.linalg.vecdot(y @ q_mat, y).add_(y @ q, alpha=2).add_(kappa)
            y.div_(rho2.clamp_min_(1e-24).sqrt_().unsqueeze(-1))
        elif self.radius is not None:
            y.mul_(self.radius / y.norm(dim=-1, keepdim=True).clamp_min_(1e-12))
        else:
            rho = (y if self.scale is None else y * self.scale).norm(dim=-1, keepdim=True)
            y.div_(rho.clamp_min_(1e-12))
        y.sub_(self.c)

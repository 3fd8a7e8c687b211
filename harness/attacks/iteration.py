"""One iteration of `kkt`'s search for a chunk of restarts, as one function: the loss and its gradient (the
residual's pass, the lambda_min penalty, the domain prior's penalty), which restarts went non-finite, the
optimiser's step and the sphere's projection.

One function so that a compiled run (fused.py) pays torch.compile's per-call cost (guards, wrappers: ~0.1 ms)
once per iteration and fuses the step's few dozen element-wise operations into the pass's loops: at m = 40 on a
384-1000-1 head these small operations, each a dispatch of its own when eager, were about a third of an iteration
(docs/scale.md, "The whole iteration compiled").

Eager (`fresh` false) it steps in place: the restarts' tensors and the optimiser's moments. Compiled it steps
copies and returns them (`fresh`): a compiled function that writes into its inputs and reduces over what it
wrote meets an inductor CPU bug (outer-loop fusion promoting a mutated buffer: pytorch/pytorch#196570), and
the copies fuse into the step's loops. A chunk of a larger batch of restarts also writes them into buffers it
is given and never reads (`into`, kkt's next-state buffers): no copy back into the whole state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.attacks.fused import eager_pass
from harness.attacks.penalties import box_grad_in_coordinates, lambda_penalty_grad, prior_penalty_grad
from harness.attacks.restart_optim import update_
from harness.attacks.sphere import SphereProjection
from harness.victims.frame import Frame


@dataclass
class Prior:
    """The domain prior as the search applies it: a penalty (box, norm; `weight` per unit of it) or a
    projection (sphere), in the candidates' coordinates (W1's row space when `basis` is set). Its values are
    tensors: a compiled iteration takes them as inputs, where floats would be constants that every new victim's
    values recompile (and dynamo's recompile limit then sends the run eager)."""

    kind: str
    weight: torch.Tensor
    frame: Frame
    typical_norm: torch.Tensor | None  # the norm prior's radius (none: no norm penalty)
    box: tuple[float, float] | None
    basis: torch.Tensor | None = None
    basis_low: torch.Tensor | None = None  # the basis cast for compiled reduced products (skinny.gemm)
    sphere: SphereProjection | None = None

    def penalty_grad(self, x) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The penalty per restart and its gradient in x, or (None, None) for a prior without one."""
        if self.kind == "box" and self.basis is not None:
            return box_grad_in_coordinates(x, self.basis, self.frame.mean, self.frame.scale, *self.box, self.basis_low)
        if self.kind in ("box", "norm"):
            return prior_penalty_grad(x, self.kind, self.frame, self.typical_norm, self.box)
        return None, None

    def project_(self, x):
        if self.sphere is not None:
            self.sphere(x)


def loss_grad(x, lam, theta_sq, lam_scale, lmin, ht, labels, form, alphas, gram, prior: Prior):
    """Relative residual, loss (+ lambda_min and prior penalties) and their gradients in (x, lambda), per
    restart, all written out (residual_grad.py, penalties.py): no autograd graph."""
    total, gx, gl = eager_pass(x, lam, (1 / theta_sq).expand(x.shape[0]), ht, labels, form, alphas, gram)
    res = total / theta_sq
    scale = lam_scale.view(-1, *([1] * (lam.dim() - 1)))
    pen, g_pen = lambda_penalty_grad(lam / scale, lmin.view(-1, 1), form)
    gl += g_pen / scale
    loss = res + pen
    pri, g_pri = prior.penalty_grad(x)
    if pri is not None:
        loss = loss + prior.weight * pri
        if g_pri is not None:
            gx.add_(g_pri.mul_(prior.weight))
    return res, loss, gx, gl


def iterate(x, lam, ms, vs, lrs, sgds, corr, mode, momentum, fresh: bool,
            theta_sq, lam_scale, lmin, ht, labels, form, alphas, gram, prior: Prior, below: float, into=None):
    """(relative residual, loss, broken flag) per restart at (x, lam), and (x, lam, ms, vs) after one step: the
    same tensors updated in place, or updated copies where `fresh`, written into the tensors `into` (x, lam, ms,
    vs in a list) when given: compiled, the loops that make them store there directly (a chunk of restarts
    writes the next state's buffers, with no copy back). A restart is flagged when its loss or gradient
    holds a NaN or an infinity (a gradient row with one sums to one: one pass; its step skips those entries) or its
    residual left its valid range (`broken`, `below` the products' bound)."""
    res, loss, gx, gl = loss_grad(x, lam, theta_sq, lam_scale, lmin, ht, labels, form, alphas, gram, prior)
    bad = ~torch.isfinite(loss) | ~torch.isfinite(gx.flatten(1).sum(1)) | broken(res, below)
    if fresh:
        x, lam, ms, vs = x.clone(), lam.clone(), [m.clone() for m in ms], [v.clone() for v in vs]
    update_([x, lam], [gx, gl], ms, vs, lrs, sgds, corr, mode, momentum)
    prior.project_(x)
    if into is not None:
        for dst, src in zip(into, [x, lam, *ms, *vs]):
            dst.copy_(src)
        k = len(ms)
        x, lam, ms, vs = into[0], into[1], into[2:2 + k], into[2 + k:]
    return res, loss, bad, x, lam, ms, vs


def broken(res: torch.Tensor, below: float) -> torch.Tensor:
    """Runs whose relative residual left its valid range: it is a sum of squares (>= 0), computed
    in closed form as ||theta||^2 - 2<theta, G> + ||G||^2, which cancels catastrophically when a
    run blows up; an optimiser then chases the rounding error to -inf. Such runs count as diverged."""
    return ~torch.isfinite(res) | (res < below) | (res > 1e4)

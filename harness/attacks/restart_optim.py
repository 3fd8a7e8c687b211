"""The optimiser of `kkt`'s batched restarts: one step size per restart, on plain tensors."""

from __future__ import annotations

import torch


class RestartOptimizer:
    """Adam or SGD-momentum with one step size per restart (leading dim), on plain tensors;
    'mixed' runs SGD-momentum on even restarts and Adam on odd ones, in the same batch."""

    def __init__(self, optimizer: str, momentum: float, tensors, lrs):
        self.mom = momentum
        R, dev = tensors[0].shape[0], tensors[0].device
        sgd = {"sgd": torch.ones(R, dtype=torch.bool), "adam": torch.zeros(R, dtype=torch.bool),
               "mixed": torch.arange(R) % 2 == 0}[optimizer].to(dev)
        self.sgd = [sgd.view(-1, *[1] * (t.dim() - 1)) for t in tensors]
        self.any_sgd, self.all_sgd = bool(sgd.any()), bool(sgd.all())
        self.lrs = [lr.view(-1, *[1] * (t.dim() - 1)) for lr, t in zip(lrs, tensors)]
        self.m = [torch.zeros_like(t) for t in tensors]
        self.v = [torch.zeros_like(t) for t in tensors]
        self.t = 0

    def optimizer_of(self, k: int) -> str:
        return "sgd" if bool(self.sgd[0].flatten()[k]) else "adam"

    def step(self, tensors, grads):
        """One step of every restart. The gradients are consumed: their non-finite entries are zeroed in place."""
        self.t += 1
        b1, b2 = 0.9, 0.999
        for t, g, m, v, lr, sgd in zip(tensors, grads, self.m, self.v, self.lrs, self.sgd):
            g = torch.nan_to_num_(g, nan=0.0, posinf=0.0, neginf=0.0)
            if self.all_sgd:
                m.mul_(self.mom).add_(g)
                t.sub_(lr * m)
                continue
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            if not self.any_sgd:  # plain Adam, in place: the consumed gradient holds the step (no fresh temporaries)
                m.mul_(b1).add_(g, alpha=1 - b1)
                step = torch.sqrt(v, out=g).div_((1 - b2**self.t) ** 0.5).add_(1e-12)
                t.sub_(torch.div(m, step, out=step).mul_(lr / (1 - b1**self.t)))
                continue
            # mixed: m holds the momentum buffer for SGD restarts and Adam's first moment for the others
            m.copy_(torch.where(sgd, m * self.mom + g, m * b1 + (1 - b1) * g))
            adam = (m / (1 - b1**self.t)) / ((v / (1 - b2**self.t)).sqrt() + 1e-12)
            t.sub_(lr * torch.where(sgd, m, adam))

    def select(self, keep):
        self.m = [m[keep] for m in self.m]
        self.v = [v[keep] for v in self.v]
        self.lrs = [lr[keep] for lr in self.lrs]
        self.sgd = [s[keep] for s in self.sgd]
        self.any_sgd, self.all_sgd = bool(self.sgd[0].any()), bool(self.sgd[0].all())

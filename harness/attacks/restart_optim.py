"""The optimiser of `kkt`'s batched restarts: one step size per restart, on plain tensors."""

from __future__ import annotations

from typing import Literal

import torch

B1, B2 = 0.9, 0.999  # Adam's moment decays
Mode = Literal["adam", "sgd", "mixed"]


class RestartOptimizer:
    """Adam or SGD-momentum with one step size per restart (leading dim), on plain tensors;
    'mixed' runs SGD-momentum on even restarts and Adam on odd ones, in the same batch. Holds the state;
    `update_` takes the step, on it (eager) or on copies that `adopt` makes the state (a compiled iteration:
    iteration.py)."""

    def __init__(self, optimizer: str, momentum: float, tensors, lrs, steps: int = 0):
        self.mom = momentum
        R, dev = tensors[0].shape[0], tensors[0].device
        sgd = {"sgd": torch.ones(R, dtype=torch.bool), "adam": torch.zeros(R, dtype=torch.bool),
               "mixed": torch.arange(R) % 2 == 0}[optimizer].to(dev)
        self.sgd = [sgd.view(-1, *[1] * (t.dim() - 1)) for t in tensors]
        self.lrs = [lr.view(-1, *[1] * (t.dim() - 1)) for lr, t in zip(lrs, tensors)]
        self.m = [torch.zeros_like(t) for t in tensors]
        self.v = [torch.zeros_like(t) for t in tensors]
        self.t = 0
        self._corr = _corrections(steps, self.m[0].dtype, dev)  # row t - 1: step t's (a run's planned steps at once)
        self._mode()

    def _mode(self):
        sgd = self.sgd[0]
        self.mode: Mode = "sgd" if bool(sgd.all()) else "mixed" if bool(sgd.any()) else "adam"

    def optimizer_of(self, k: int) -> str:
        return "sgd" if bool(self.sgd[0].flatten()[k]) else "adam"

    def corrections(self) -> torch.Tensor:
        """Count one more step and return Adam's bias corrections for it, (1 - b1^t, 1 - b2^t, (1 - b2^t)^0.5), as
        a tensor (a compiled step takes them as an input: as floats they would be constants that recompile): a row
        of a table made for the planned steps (one tensor a step would cost a host-to-device copy on a GPU)."""
        self.t += 1
        if self.t > len(self._corr):
            self._corr = _corrections(2 * self.t, self._corr.dtype, self._corr.device)
        return self._corr[self.t - 1]

    def state(self, sl: slice) -> tuple[list, list, list, list]:
        """The moments, step sizes and SGD flags of restarts `sl` (views: an in-place update_ writes through)."""
        return [m[sl] for m in self.m], [v[sl] for v in self.v], [lr[sl] for lr in self.lrs], [s[sl] for s in self.sgd]

    def adopt(self, m: list, v: list):
        """Moments computed elsewhere (a compiled step's copies) become the state."""
        self.m, self.v = m, v

    def select(self, keep):
        self.m = [m[keep] for m in self.m]
        self.v = [v[keep] for v in self.v]
        self.lrs = [lr[keep] for lr in self.lrs]
        self.sgd = [s[keep] for s in self.sgd]
        self._mode()


def _corrections(steps: int, dtype, device) -> torch.Tensor:
    """Adam's bias corrections for steps 1..steps, one row each (see `corrections`)."""
    rows = [(1 - B1**t, 1 - B2**t, (1 - B2**t) ** 0.5) for t in range(1, steps + 1)]
    return torch.tensor(rows, dtype=dtype, device=device).view(-1, 3)


def _finite(g: torch.Tensor) -> torch.Tensor:
    """g with its NaNs and infinities zeroed: in place when eager; compiled as a comparison with infinity (NaN
    compares false), which inductor vectorises, where its nan_to_num tests NaN one element at a time (2.8x the
    loop's time on 2 x 376,000 entries)."""
    if torch.compiler.is_compiling():
        return torch.where(g.abs() < float("inf"), g, 0.0)
    return torch.nan_to_num_(g, nan=0.0, posinf=0.0, neginf=0.0)


def update_(tensors, grads, ms, vs, lrs, sgds, corr: torch.Tensor, mode: Mode, momentum: float):
    """One step of restarts `tensors` given their gradients, moments ms / vs (all updated in place), step sizes,
    SGD flags and `corrections()`. The gradients are consumed: their non-finite entries are zeroed in place, and
    plain Adam writes its step into them (no fresh temporaries)."""
    for t, g, m, v, lr, sgd in zip(tensors, grads, ms, vs, lrs, sgds):
        g = _finite(g)
        if mode == "sgd":
            m.mul_(momentum).add_(g)
            t.sub_(lr * m)
            continue
        v.mul_(B2).addcmul_(g, g, value=1 - B2)
        if mode == "adam":
            m.mul_(B1).add_(g, alpha=1 - B1)
            step = torch.sqrt(v, out=g).div_(corr[2]).add_(1e-12)
            t.sub_(torch.div(m, step, out=step).mul_(lr / corr[0]))
            continue
        # mixed: m holds the momentum buffer for SGD restarts and Adam's first moment for the others
        m.copy_(torch.where(sgd, m * momentum + g, m * B1 + (1 - B1) * g))
        adam = (m / corr[0]) / ((v / corr[1]).sqrt() + 1e-12)
        t.sub_(lr * torch.where(sgd, m, adam))

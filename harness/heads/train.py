"""Train a victim head full-batch to its stopping rule, and report how close it got."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, asdict
from typing import Callable, Literal

import torch

from harness.heads.losses import LossName, data_loss, output_dim, predictions, targets_for
from harness.heads.mlp import BiasMode, MLPHead
from harness.progress import bar as progress_bar
from harness.provenance import device_name


CHECK_EVERY = 10  # stopping rule checked every this many steps (each check syncs)


@dataclass(frozen=True)
class TrainConfig:
    loss: LossName = "logistic"
    optimizer: Literal["gd", "adam", "lbfgs"] = "gd"
    lr: float = 0.01
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: from lr to 0 over max_steps (gd, adam)
    weight_decay: float = 0.0
    max_steps: int = 10_000
    target_loss: float = 1e-4  # stop when the data loss is below this (no weight decay)
    grad_tol: float = 1e-5  # stop when the full objective's gradient norm is below this
    plateau_steps: int = 0  # stop when the objective fell by less than plateau_tol (relative) over this many steps
    plateau_tol: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if self.lr_schedule != "constant" and self.optimizer == "lbfgs":
            raise ValueError(f"TrainConfig: lr_schedule = {self.lr_schedule!r} with optimizer 'lbfgs': lbfgs searches "
                             "its own step; use lr_schedule 'constant', or optimizer 'gd' or 'adam'")


@dataclass
class TrainReport:
    final_loss: float
    objective: float
    grad_norm: float
    steps: int
    train_acc: float
    stopped_by: str
    wall_s: float
    device: str = ""  # where it trained (provenance.device_name(): `cpu xN` or the GPU); "" in records before it
    # wd where the objective `grad_norm` measures is a mean loss plus (wd/2)‖θ‖² over every parameter; None where it is
    # of another form (no decay, a penalty on some layers only) or in records before it: what stationarity_bound needs
    weight_decay: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def decay_penalty(head: MLPHead, weight_decay: float) -> torch.Tensor:
    """(weight_decay/2)‖θ‖² over every parameter: the penalty a TrainReport's `weight_decay` names."""
    return 0.5 * weight_decay * sum((p**2).sum() for p in head.parameters())


def objective(head: MLPHead, x, target, cfg: TrainConfig, decay: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(data loss, data loss + weight_decay/2 * squared norm of the parameters); `decay=False` leaves the
    second term out of the graph (an optimiser that adds weight_decay * p to each gradient itself)."""
    loss = data_loss(cfg.loss, head(x), target)
    if cfg.weight_decay > 0 and decay:
        return loss, loss + decay_penalty(head, cfg.weight_decay)
    return loss, loss


def train_head(
    head: MLPHead,
    x: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    cfg: TrainConfig,
    progress: bool = True,
) -> TrainReport:
    """Full-batch training. Without weight decay, stop at `target_loss`; with it, at `grad_tol`.
    Runs on the first CUDA device where one is present and gives the head back on the CPU."""
    t0 = time.perf_counter()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    head.to(dev)
    x, labels = x.to(dev), labels.to(dev)
    target = targets_for(cfg.loss, labels, num_classes)
    params = list(head.parameters())
    # gd and adam take the weight-decay term's gradient (weight_decay * p, the L2 penalty's) inside the optimiser's
    # step rather than through autograd: the same objective, without a forward and backward pass per parameter
    # (2-3x the steps per second on a 384-1000-1 head, 2 threads); the checks below add it back
    wd = cfg.weight_decay if cfg.optimizer != "lbfgs" else 0.0
    if cfg.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(params, lr=cfg.lr, max_iter=20, history_size=50, line_search_fn="strong_wolfe")
    elif cfg.optimizer == "adam":
        # fused: one kernel per tensor, where the default runs a dozen element-wise passes; on a 384-1000-1 head
        # that is most of a full-batch step (Adam 0.9-1.4 ms against 3.3-6.7 ms per step, 2 threads)
        opt = torch.optim.Adam(params, lr=cfg.lr, fused=True, weight_decay=wd)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, weight_decay=wd)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.max_steps)
             if cfg.lr_schedule == "cosine" else None)

    def closure():
        opt.zero_grad(set_to_none=True)
        _, o = objective(head, x, target, cfg)
        o.backward()
        return o
    stopped_by = "max_steps"
    bar = progress_bar(range(cfg.max_steps), desc="train head", disable=not progress)
    step = 0
    history: list[float] = []  # the objective at each check
    window = max(1, cfg.plateau_steps // CHECK_EVERY)
    for step in bar:
        opt.zero_grad(set_to_none=True)
        loss, obj = objective(head, x, target, cfg, decay=not wd)
        obj.backward()
        if step % CHECK_EVERY == 0 or step == cfg.max_steps - 1:
            with torch.no_grad():
                obj_v, loss_v = float(obj) + 0.5 * wd * sum(float((p**2).sum()) for p in params), float(loss)
                gnorm = math.sqrt(sum(float(((p.grad + wd * p) ** 2).sum()) for p in params))
            bar.set_postfix(loss=f"{loss_v:.2e}", grad=f"{gnorm:.1e}", refresh=False)
            if not math.isfinite(obj_v):
                stopped_by = "diverged"
                break
            if cfg.weight_decay == 0 and loss_v < cfg.target_loss:
                stopped_by = "target_loss"
                break
            if gnorm < cfg.grad_tol:
                stopped_by = "grad_tol"
                break
            history.append(obj_v)
            if cfg.plateau_steps and len(history) > window:
                before = history[-1 - window]
                if before - obj_v < cfg.plateau_tol * abs(before):
                    stopped_by = "plateau"
                    break
        if cfg.optimizer == "lbfgs":
            opt.step(closure)  # one outer step = up to 20 inner L-BFGS iterations
        else:
            opt.step()
            if sched is not None:
                sched.step()
    bar.close()
    head.zero_grad(set_to_none=True)
    report = report_on(head, cfg.loss, x, labels, num_classes, step + 1, stopped_by, time.perf_counter() - t0,
                       device_name(str(dev)), weight_decay=cfg.weight_decay)
    head.to("cpu")
    return report


def report_on(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int,
              stopped_by: str, wall_s: float, device: str = "", weight_decay: float = 0.0,
              penalty: Callable[[MLPHead], torch.Tensor] | None = None) -> TrainReport:
    """The training record on the whole training set: data loss, objective, its gradient norm, accuracy. The
    objective is the data loss plus (weight_decay/2)‖θ‖² over every parameter (and the report names that decay, what
    stationarity_bound needs), or plus `penalty(head)` for a penalty of another form (the report then names none)."""
    assert not (weight_decay and penalty), "state the penalty once: weight_decay or penalty"
    target = targets_for(loss, labels, num_classes)
    out = head(x)
    data = data_loss(loss, out, target)
    obj = data + (decay_penalty(head, weight_decay) if weight_decay else penalty(head) if penalty else 0.0)
    grads = torch.autograd.grad(obj, list(head.parameters()))
    gnorm = math.sqrt(sum(float((g**2).sum()) for g in grads))
    acc = float((predictions(loss, out.detach()) == labels).float().mean())
    return TrainReport(float(data.detach()), float(obj.detach()), gnorm, steps, acc, stopped_by, wall_s, device,
                       weight_decay or None)


def untrained_report(head: MLPHead, x: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: TrainConfig) -> TrainReport:
    """The report of a head left at its initialisation (a control whose weights never saw the data)."""
    return report_on(head, cfg.loss, x, labels, num_classes, 0, "untrained", 0.0, weight_decay=cfg.weight_decay)


def fit_head(
    x: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    widths: tuple[int, ...] | list[int],
    bias: BiasMode,
    init_scale: float,
    cfg: TrainConfig,
    seed: int,
    train: bool = True,
    progress: bool = False,
) -> tuple[MLPHead, TrainReport]:
    """A seeded MLP head on x (n, d), its default init scaled by `init_scale`, trained by `cfg`;
    `train=False` leaves it at its initialisation (the untrained control)."""
    torch.manual_seed(seed)
    head = MLPHead([x.shape[1], *widths, output_dim(cfg.loss, num_classes)], bias=bias).scale_init_(init_scale)
    if not train:
        return head, untrained_report(head, x, labels, num_classes, cfg)
    return head, train_head(head, x, labels, num_classes, cfg, progress=progress)


@torch.no_grad()
def accuracy(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor) -> float:
    if len(x) == 0:
        return float("nan")
    return float((predictions(loss, head(x)) == labels).float().mean())

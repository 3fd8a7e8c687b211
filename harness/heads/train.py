"""Train a victim head full-batch to its stopping rule, and report how close it got."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, asdict
from typing import Literal

import torch
from tqdm.auto import tqdm

from harness.heads.losses import LossName, data_loss, predictions, targets_for
from harness.heads.mlp import MLPHead


@dataclass(frozen=True)
class TrainConfig:
    loss: LossName = "logistic"
    optimizer: Literal["gd", "adam"] = "gd"
    lr: float = 0.01
    weight_decay: float = 0.0
    max_steps: int = 10_000
    target_loss: float = 1e-4  # stop when the data loss is below this (no weight decay)
    grad_tol: float = 1e-5  # stop when the full objective's gradient norm is below this
    seed: int = 0


@dataclass
class TrainReport:
    final_loss: float
    objective: float
    grad_norm: float
    steps: int
    train_acc: float
    stopped_by: str
    wall_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def objective(head: MLPHead, x, target, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    loss = data_loss(cfg.loss, head(x), target)
    if cfg.weight_decay > 0:
        reg = sum((p**2).sum() for p in head.parameters())
        return loss, loss + 0.5 * cfg.weight_decay * reg
    return loss, loss


def train_head(
    head: MLPHead,
    x: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    cfg: TrainConfig,
    progress: bool = True,
) -> TrainReport:
    """Full-batch training. Without weight decay, stop at `target_loss`; with it, at `grad_tol`."""
    t0 = time.perf_counter()
    target = targets_for(cfg.loss, labels, num_classes)
    params = list(head.parameters())
    opt = (
        torch.optim.Adam(params, lr=cfg.lr)
        if cfg.optimizer == "adam"
        else torch.optim.SGD(params, lr=cfg.lr)
    )
    stopped_by = "max_steps"
    bar = tqdm(range(cfg.max_steps), desc="train head", disable=not progress, leave=False)
    step = 0
    for step in bar:
        opt.zero_grad(set_to_none=True)
        loss, obj = objective(head, x, target, cfg)
        obj.backward()
        gnorm = math.sqrt(sum(float((p.grad**2).sum()) for p in params))
        if not math.isfinite(float(obj)):
            stopped_by = "diverged"
            break
        if cfg.weight_decay == 0 and float(loss) < cfg.target_loss:
            stopped_by = "target_loss"
            break
        if gnorm < cfg.grad_tol:
            stopped_by = "grad_tol"
            break
        opt.step()
        if step % 200 == 0:
            bar.set_postfix(loss=f"{float(loss):.2e}", grad=f"{gnorm:.1e}")
    bar.close()
    head.zero_grad(set_to_none=True)
    loss, obj = objective(head, x, target, cfg)
    grads = torch.autograd.grad(obj, params)
    gnorm = math.sqrt(sum(float((g**2).sum()) for g in grads))
    with torch.no_grad():
        acc = float((predictions(cfg.loss, head(x)) == labels).float().mean())
    return TrainReport(
        final_loss=float(loss),
        objective=float(obj),
        grad_norm=gnorm,
        steps=step + 1,
        train_acc=acc,
        stopped_by=stopped_by,
        wall_s=time.perf_counter() - t0,
    )


@torch.no_grad()
def accuracy(head: MLPHead, loss: LossName, x: torch.Tensor, labels: torch.Tensor) -> float:
    if len(x) == 0:
        return float("nan")
    return float((predictions(loss, head(x)) == labels).float().mean())

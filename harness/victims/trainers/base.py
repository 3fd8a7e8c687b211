"""What every trainer takes and returns. A trainer declares `Params` and implements `fit`."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
from pydantic import BaseModel, ConfigDict

from harness.heads.losses import data_loss
from harness.heads.mlp import MLPHead
from harness.heads.train import TrainReport, report_on
from harness.provenance import device_name
from harness.specs.task import HeadRecipe


class TrainerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf / .nan: refused, not trained on


@dataclass
class Fitted:
    head: MLPHead
    report: TrainReport
    info: dict[str, Any] = field(default_factory=dict)  # recorded on the victim's row (e.g. the epsilon reached)


class Trainer:
    name: ClassVar[str]
    Params: ClassVar[type[TrainerParams]] = TrainerParams
    linear: ClassVar[bool] = False  # no hidden layer: the KKT condition fixes only a weighted sum of the members
    uses_head_recipe: ClassVar[bool] = False  # trains with the task's `head:` weight decay and step schedule

    def __init__(self, params: TrainerParams | dict | None = None):
        self.params = params if isinstance(params, TrainerParams) else self.Params(**(params or {}))

    def check(self) -> None:
        """Fail before any work when the trainer cannot run here (a missing optional package)."""

    def fit(self, x: torch.Tensor, labels: torch.Tensor, num_classes: int, head: HeadRecipe, seed: int,
            progress: bool, val: tuple[torch.Tensor, torch.Tensor] | None) -> Fitted:
        raise NotImplementedError


def report_of(head: MLPHead, loss: str, x: torch.Tensor, labels: torch.Tensor, num_classes: int,
              penalty: Callable[[MLPHead], torch.Tensor] | None, steps: int, stopped_by: str, t0: float,
              weight_decay: float = 0.0) -> TrainReport:
    """`report_on` for a trainer that started at `t0` on the CPU (the trainers here run there)."""
    return report_on(head, loss, x, labels, num_classes, steps, stopped_by, time.perf_counter() - t0, device_name("cpu"),
                     weight_decay, penalty)


def minibatch_epoch(model: MLPHead, opt: torch.optim.Optimizer, x: torch.Tensor, target: torch.Tensor, loss: str,
                    batch_size: int, gen: torch.Generator,
                    penalty: Callable[[MLPHead, int], torch.Tensor] | None = None) -> float:
    """One pass over the rows in a seeded random order, a step per batch of the data loss (plus
    `penalty(model, batch rows)`); returns the objective averaged over rows."""
    order = torch.randperm(len(x), generator=gen)
    total = 0.0
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        opt.zero_grad(set_to_none=True)
        obj = data_loss(loss, model(x[idx]), target[idx])
        if penalty is not None:
            obj = obj + penalty(model, len(idx))
        obj.backward()
        opt.step()
        total += float(obj.detach()) * len(idx)
    return total / len(x)


def glorot_(head: MLPHead, gen: torch.Generator, factor: float = 6.0) -> MLPHead:
    """scikit-learn's MLP initialisation: weights and biases uniform in +-sqrt(factor / (fan_in + fan_out))."""
    with torch.no_grad():
        for layer in head.layers:
            bound = math.sqrt(factor / (layer.in_features + layer.out_features))
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=gen) * 2 * bound - bound)
            if layer.bias is not None:
                layer.bias.copy_(torch.rand(layer.bias.shape, generator=gen) * 2 * bound - bound)
    return head

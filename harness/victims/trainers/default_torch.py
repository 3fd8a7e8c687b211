"""`default-torch`: what a PyTorch tutorial does: default init, Adam, cross-entropy, no weight decay,
early stopping on a validation split drawn from rows the head was not trained on."""

from __future__ import annotations

import copy
import time

import torch
from pydantic import Field

from harness.heads.losses import data_loss, output_dim, targets_for
from harness.heads.mlp import MLPHead
from harness.progress import bar as progress_bar
from harness.specs.task import HeadRecipe
from harness.victims.trainers.base import Fitted, Trainer, TrainerParams, minibatch_epoch, report_of


class DefaultTorchParams(TrainerParams):
    lr: float = Field(1e-3, gt=0, description="Adam step size")
    max_epochs: int = Field(500, ge=1, description="epochs at most")
    patience: int = Field(20, ge=1, description="epochs without a better validation loss before stopping")
    batch_size: int = Field(32, ge=1, description="rows per step")


class DefaultTorch(Trainer):
    """PyTorch default init (the task's head widths, biases everywhere), Adam, no weight decay, early stopping."""

    name = "default-torch"
    Params = DefaultTorchParams

    def fit(self, x, labels, num_classes, head: HeadRecipe, seed, progress, val) -> Fitted:
        p: DefaultTorchParams = self.params
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = MLPHead([x.shape[1], *head.widths, output_dim(head.loss, num_classes)], bias="all")
        opt = torch.optim.Adam(model.parameters(), lr=p.lr)
        target = targets_for(head.loss, labels, num_classes)
        if val is None or len(val[0]) == 0:
            val = (x, labels)  # no held-out rows: stop on the training loss
        vx, vt = val[0], targets_for(head.loss, val[1], num_classes)
        best, best_state, stale, stopped_by, epoch = float("inf"), copy.deepcopy(model.state_dict()), 0, "max_epochs", 0
        bar = progress_bar(range(p.max_epochs), desc="train head (default-torch)", disable=not progress)
        for epoch in bar:
            minibatch_epoch(model, opt, x, target, head.loss, p.batch_size, gen)
            with torch.no_grad():
                v = float(data_loss(head.loss, model(vx), vt))
            if v < best:
                best, best_state, stale = v, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if stale >= p.patience:
                    stopped_by = "early_stopping"
                    break
        bar.close()
        model.load_state_dict(best_state)
        report = report_of(model, head.loss, x, labels, num_classes, None, epoch + 1, stopped_by, t0)
        return Fitted(model, report, {"val_loss": best, "val_rows": len(vx)})

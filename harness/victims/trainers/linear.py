"""`linear`: a logistic-regression probe (no hidden layer), as scikit-learn's LogisticRegression fits it.

For a linear head the KKT condition says only that the weights are a weighted sum of the members:
it cannot single one out, so the attack reports the membership signal of that sum and no search.
"""

from __future__ import annotations

import time

import torch
from pydantic import Field

from harness.heads.losses import data_loss, output_dim, targets_for
from harness.heads.mlp import MLPHead
from harness.specs.task import HeadRecipe
from harness.victims.trainers.base import Fitted, Trainer, TrainerParams, report_of


class LinearParams(TrainerParams):
    C: float = Field(1.0, gt=0, description="inverse L2 strength (scikit-learn's C)")
    max_iter: int = Field(100, ge=1, description="L-BFGS iterations")


class Linear(Trainer):
    """Logistic-regression probe (L2, C=1, L-BFGS): the KKT condition fixes only a weighted sum of the members."""

    name = "linear"
    Params = LinearParams
    linear = True

    def fit(self, x, labels, num_classes, head: HeadRecipe, seed, progress, val) -> Fitted:
        p: LinearParams = self.params
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        model = MLPHead([x.shape[1], output_dim(head.loss, num_classes)], bias="all")
        with torch.no_grad():
            for q in model.parameters():
                q.zero_()
        target = targets_for(head.loss, labels, num_classes)
        n = len(x)

        def penalty(m: MLPHead) -> torch.Tensor:
            return (m.layers[0].weight ** 2).sum() / (2 * p.C * n)

        opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=p.max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad(set_to_none=True)
            obj = data_loss(head.loss, model(x), target) + penalty(model)
            obj.backward()
            return obj

        opt.step(closure)
        return Fitted(model, report_of(model, head.loss, x, labels, num_classes, penalty, p.max_iter, "lbfgs", t0))

"""`sklearn-mlp`: what scikit-learn's MLPClassifier does by default, in torch.

100 ReLU units, Glorot-uniform weights and biases, Adam (lr 1e-3), L2 penalty alpha/2 |W|^2 per batch
(weights only), mini-batches of min(200, n), 200 epochs, and its stopping rule: stop once the epoch
loss has not improved by tol (1e-4) for more than n_iter_no_change (10) epochs.
"""

from __future__ import annotations

import time
from typing import Annotated

import torch
from pydantic import Field

from harness.heads.losses import output_dim, targets_for
from harness.heads.mlp import MLPHead
from harness.progress import bar as progress_bar
from harness.specs.task import MAX_WIDTH, HeadRecipe
from harness.victims.trainers.base import Fitted, Trainer, TrainerParams, glorot_, minibatch_epoch, report_of


class SklearnParams(TrainerParams):
    hidden: tuple[Annotated[int, Field(ge=1, le=MAX_WIDTH)], ...] = Field((100,), min_length=1,
                                                                           description="hidden_layer_sizes")
    alpha: float = Field(1e-4, ge=0, description="L2 penalty (weights only, scaled by 1 / batch size)")
    lr: float = Field(1e-3, gt=0, description="learning_rate_init (Adam)")
    max_iter: int = Field(200, ge=1, description="epochs at most")
    tol: float = Field(1e-4, ge=0, description="improvement that resets the no-change count")
    n_iter_no_change: int = Field(10, ge=1, description="epochs without improvement before stopping")
    batch_size: int = Field(200, ge=1, description="min(batch_size, n) rows per step")


class SklearnMLP(Trainer):
    """scikit-learn MLPClassifier defaults: 100 hidden, Glorot init, Adam, L2 1e-4, 200 epochs, its tol rule."""

    name = "sklearn-mlp"
    Params = SklearnParams

    def initial_head(self, in_dim: int, out_dim: int, gen: torch.Generator) -> MLPHead:
        """The head before training: Glorot weights and biases, the generator's first draws."""
        return glorot_(MLPHead([in_dim, *self.params.hidden, out_dim], bias="all"), gen)

    def fit(self, x, labels, num_classes, head: HeadRecipe, seed, progress, val) -> Fitted:
        p: SklearnParams = self.params
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(seed)
        model = self.initial_head(x.shape[1], output_dim(head.loss, num_classes), gen)
        opt = torch.optim.Adam(model.parameters(), lr=p.lr, betas=(0.9, 0.999), eps=1e-8)
        target = targets_for(head.loss, labels, num_classes)
        n, bs = len(x), min(p.batch_size, len(x))

        def penalty(m: MLPHead, size: int = n) -> torch.Tensor:
            return 0.5 * p.alpha * sum((layer.weight**2).sum() for layer in m.layers) / size

        best, stale, stopped_by, epoch = float("inf"), 0, "max_iter", 0
        bar = progress_bar(range(p.max_iter), desc="train head (sklearn-mlp)", disable=not progress)
        for epoch in bar:
            epoch_loss = minibatch_epoch(model, opt, x, target, head.loss, bs, gen, penalty)
            stale = stale + 1 if epoch_loss > best - p.tol else 0
            best = min(best, epoch_loss)
            if stale > p.n_iter_no_change:
                stopped_by = "tol"
                break
        bar.close()
        return Fitted(model, report_of(model, head.loss, x, labels, num_classes, penalty, epoch + 1, stopped_by, t0))
